"""Benchmark of the API's read paths at 1,000 workflows (issue #19), over HTTP.

    .venv/bin/python bench/api.py                  # before/after on SQLite and PostgreSQL,
                                                   # memory, --workers scaling (~25 minutes)
    .venv/bin/python bench/api.py --quick          # a smoke run (~8 minutes)
    .venv/bin/python bench/api.py --only s         # parts: s(QLite) p(ostgreSQL) m(emory)
                                                   # w(orkers)

It starts ``signoff serve`` as users do (bench/_harness.py), fills one team with 1,000
workflows — 30 % drafts, 70 % active with a schedule and 1–5 finished runs each — by copying
rows of a few workflows made through the API (a plan, an activation, a real run), then measures
the API's list (whole and ``?limit=50``), a workflow's detail, a run's detail, and the
dashboard's list and workflow pages: p50/p95 latency and requests/s with 1, 8 and 32 clients
at once, and the serving process's CPU per request (``/proc/<pid>/stat``).

"before" is the code of ``--base`` (default: the commit #19 started from), exported with
``git archive`` and put first on the processes' ``PYTHONPATH``; "after" is this checkout. Both
services run side by side on their own databases, filled alike, and every cell is measured
twice, alternating before/after, so both see the same machine load. bench/README.md explains
how to read the output.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import httpx
from _agent_cost import FIVE_STEPS
from _harness import (
    Api,
    Service,
    cpu_seconds,
    create_database,
    drop_database,
    status_field,
)
from sqlalchemy import MetaData, create_engine, func, select, text

from signoff.kit.ids import new_id

REPO = Path(__file__).resolve().parent.parent
BASE_COMMIT = "bb794f6"
WORKFLOWS = 1000
SCHEDULE = "0 9 * * 1"
CONCURRENCY = (1, 8, 32)
MEMORY_REQUESTS = 10_000
TABLES = (
    "workflows",
    "workflow_steps",
    "runs",
    "run_steps",
    "conversations",
    "conversation_messages",
)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def load() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


# -- filling the team ---------------------------------------------------------------------------


@dataclass
class Team:
    token: str
    drafts: list[str] = field(default_factory=list)
    active: list[str] = field(default_factory=list)
    runs: list[tuple[str, int]] = field(default_factory=list)


def sync_url(service: Service, database_url: str) -> str:
    if database_url:
        return database_url.replace("postgresql://", "postgresql+psycopg://", 1)
    return f"sqlite:///{service.workdir / 'data' / 'signoff.db'}"


async def make_templates(api: Api) -> tuple[str, str]:
    """A draft planned by the (offline) model, and an active workflow with a schedule whose
    first run has completed."""
    draft = await api.workflow("Write a LinkedIn post about our new electric bike range")
    created = await api._call(
        "POST",
        "/api/workflows",
        201,
        json={"goal": "A weekly report on electric bikes", "schedule": SCHEDULE},
    )
    active: str = created["workflowId"]
    await api._call(
        "POST", f"/api/workflows/{active}/steps", 200, json={"mode": "replace", "steps": FIVE_STEPS}
    )
    await api.activate(active)
    deadline = time.monotonic() + 120
    while True:
        latest = (await api.latest_runs()).get(active)
        if latest and latest["status"] == "completed":
            return draft, active
        if time.monotonic() > deadline:
            raise RuntimeError(f"the template run did not complete: {latest}")
        await asyncio.sleep(0.2)


def fill(url: str, draft_id: str, active_id: str, count: int, seed: int) -> Team:
    """Copy the templates' rows into ``count`` workflows (the columns are whatever the schema
    of the code under test has: rows are copied as read, ids and keys replaced)."""
    rng = random.Random(seed)
    engine = create_engine(url)
    meta = MetaData()
    meta.reflect(engine, only=TABLES)
    wf, wf_steps, runs, run_steps, convs, messages = (meta.tables[name] for name in TABLES)

    def rows(conn: Any, table: Any, column: str, value: Any) -> list[dict[str, Any]]:
        result = conn.execute(select(table).where(table.c[column] == value))
        return [dict(row._mapping) for row in result]

    team = Team(token="")
    with engine.begin() as conn:
        draft = rows(conn, wf, "id", draft_id)[0]
        draft_steps = rows(conn, wf_steps, "workflow_id", draft_id)
        active = rows(conn, wf, "id", active_id)[0]
        active_steps = rows(conn, wf_steps, "workflow_id", active_id)
        run = rows(conn, runs, "workflow_id", active_id)[0]
        run_step_rows = rows(conn, run_steps, "run_id", run["id"])
        conv = rows(conn, convs, "id", run["conversation_id"])[0]
        message_rows = rows(conn, messages, "conversation_id", conv["id"])
        next_run = conn.execute(select(func.max(runs.c.id))).scalar_one() + 1
        new = {name: [] for name in TABLES}  # type: dict[str, list[dict[str, Any]]]
        start = active["created_at"] - timedelta(seconds=count + 10)
        for number in range(count):
            is_draft = number % 10 < 3
            workflow = dict(draft if is_draft else active)
            workflow_id = new_id()
            stamp = start + timedelta(seconds=number)
            run_total = 0 if is_draft else rng.randint(1, 5)
            workflow |= {
                "id": workflow_id,
                "title": f"{workflow['title'][:100]} #{number}",
                "created_at": stamp,
                "updated_at": stamp,
                "run_count": run_total,
            }
            new["workflows"].append(workflow)
            for step in draft_steps if is_draft else active_steps:
                new["workflow_steps"].append(step | {"workflow_id": workflow_id})
            (team.drafts if is_draft else team.active).append(workflow_id)
            for run_number in range(1, run_total + 1):
                conversation_id = new_id()
                new["conversations"].append(
                    conv | {"id": conversation_id, "workflow_id": workflow_id}
                )
                for message in message_rows:
                    copy = {k: v for k, v in message.items() if k != "id"}
                    new["conversation_messages"].append(copy | {"conversation_id": conversation_id})
                run_id = next_run
                next_run += 1
                new["runs"].append(
                    run
                    | {
                        "id": run_id,
                        "workflow_id": workflow_id,
                        "run_number": run_number,
                        "conversation_id": conversation_id,
                    }
                )
                for step in run_step_rows:
                    copy = {k: v for k, v in step.items() if k != "id"}
                    new["run_steps"].append(copy | {"run_id": run_id})
                team.runs.append((workflow_id, run_id))
        # Parents before children (PostgreSQL checks the foreign keys).
        for name in (*TABLES[:2], "conversations", "conversation_messages", *TABLES[2:4]):
            for offset in range(0, len(new[name]), 2000):
                conn.execute(meta.tables[name].insert(), new[name][offset : offset + 2000])
        if engine.dialect.name == "postgresql":
            for name in ("runs", "run_steps", "conversation_messages"):
                conn.execute(
                    text(
                        f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), "  # noqa: S608
                        f"(SELECT max(id) FROM {name}))"
                    )
                )
            conn.execute(text("ANALYZE"))
    engine.dispose()
    return team


# -- measuring ------------------------------------------------------------------------------------


@dataclass
class Cell:
    latencies: list[float] = field(default_factory=list)
    seconds: float = 0.0
    server_cpu: float = 0.0
    client_cpu: float = 0.0
    rss_kib: int = 0
    errors: int = 0

    def add(self, other: Cell) -> None:
        self.errors += other.errors
        self.latencies += other.latencies
        self.seconds += other.seconds
        self.server_cpu += other.server_cpu
        self.client_cpu += other.client_cpu
        self.rss_kib = max(self.rss_kib, other.rss_kib)

    @property
    def count(self) -> int:
        return len(self.latencies)

    @property
    def rps(self) -> float:
        return self.count / self.seconds

    @property
    def cpu_ms(self) -> float:
        return 1000 * self.server_cpu / self.count

    def p(self, fraction: float) -> float:
        return 1000 * percentile(self.latencies, fraction)


def server_pids(pid: int) -> list[int]:
    """The serving process and its children (``--workers``)."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children", encoding="ascii") as handle:
            children = [int(child) for child in handle.read().split()]
    except OSError:
        children = []
    return [pid, *children]


def processes_cpu(pids: list[int]) -> float:
    return sum(cpu_seconds(pid) for pid in pids)


class Client:
    """An HTTP client signed in as the team's owner; pages get the session cookie, as from a
    browser, the API the Bearer token."""

    def __init__(self, base_url: str, token: str) -> None:
        self.http = httpx.AsyncClient(
            base_url=base_url,
            timeout=httpx.Timeout(120),
            limits=httpx.Limits(
                max_connections=64, max_keepalive_connections=64, keepalive_expiry=1.0
            ),
        )
        self.api_headers = {"Authorization": f"Bearer {token}"}
        self.page_headers = {"Cookie": f"signoff_session={token}"}

    async def get(self, url: str, *, check: bool = True) -> httpx.Response:
        headers = self.page_headers if url.startswith("/dashboard") else self.api_headers
        response = await self.http.get(url, headers=headers)
        if check and response.status_code != 200:
            raise RuntimeError(f"GET {url} → {response.status_code}: {response.text[:300]}")
        return response

    async def measure(
        self, pid: int, urls: list[str], concurrency: int, seconds: float, minimum: int
    ) -> Cell:
        rng = random.Random(concurrency)
        await asyncio.gather(*(self.get(rng.choice(urls), check=False) for _ in range(concurrency)))
        cell = Cell()
        pids = server_pids(pid)
        cpu_start, client_start = processes_cpu(pids), time.process_time()
        start = time.perf_counter()
        end = start + seconds

        give_up = start + max(seconds, 1.0) * 10

        async def one_client() -> None:
            while time.perf_counter() < end or (
                cell.count < minimum and time.perf_counter() < give_up
            ):
                url = rng.choice(urls)
                sent = time.perf_counter()
                # An error (a 500 when the connection pool ran dry, a connection dropped) is
                # counted, not fatal: it is a finding.
                try:
                    failed = (await self.get(url, check=False)).status_code != 200
                except httpx.TransportError:
                    failed = True
                cell.errors += failed
                cell.latencies.append(time.perf_counter() - sent)

        await asyncio.gather(*(one_client() for _ in range(concurrency)))
        cell.seconds = time.perf_counter() - start
        cell.server_cpu = processes_cpu(pids) - cpu_start
        cell.client_cpu = time.process_time() - client_start
        cell.rss_kib = sum(status_field(p, "VmRSS") for p in pids)
        return cell

    async def close(self) -> None:
        await self.http.aclose()


@dataclass
class Target:
    """One version of the code, served and filled."""

    name: str
    service: Service
    team: Team
    client: Client

    def urls(self, what: str) -> list[str]:
        rng = random.Random(19)
        workflows = self.team.drafts + self.team.active
        if what == "list":
            return ["/api/workflows"]
        if what == "list50":
            return ["/api/workflows?limit=50"]
        if what == "detail":
            return [f"/api/workflows/{rng.choice(workflows)}" for _ in range(200)]
        if what == "run":
            return [f"/api/workflows/{w}/runs/{r}" for w, r in rng.sample(self.team.runs, 200)]
        if what == "page_list":
            return ["/dashboard"]
        if what == "page_workflow":
            return [f"/dashboard/workflows/{rng.choice(workflows)}" for _ in range(200)]
        raise ValueError(what)


ENDPOINTS = {
    "list": "GET /api/workflows (1,000)",
    "list50": "GET /api/workflows?limit=50",
    "detail": "GET /api/workflows/{id}",
    "run": "GET …/runs/{runId}",
    "page_list": "dashboard list page",
    "page_workflow": "dashboard workflow page",
}


async def start_target(
    name: str,
    workdir: Path,
    database_url: str,
    code_path: str = "",
    serve_args: tuple[str, ...] = (),
) -> Target:
    service = Service(
        workdir / name,
        database_url=database_url,
        code_path=code_path,
        serve_args=serve_args,
    )
    await service.start()
    api = Api(service.base_url)
    try:
        await api.signup()
        draft, active = await make_templates(api)
        url = sync_url(service, database_url)
        team = await asyncio.to_thread(fill, url, draft, active, WORKFLOWS - 2, 19)
    except BaseException:
        await service.stop()
        raise
    finally:
        await api.close()
    team.token = api.headers["Authorization"].split()[1]
    team.drafts.append(draft)
    team.active.append(active)
    return Target(name, service, team, Client(service.base_url, team.token))


async def stop_target(target: Target) -> None:
    await target.client.close()
    await target.service.stop()


# -- the parts --------------------------------------------------------------------------------


def table(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |"
        for row in rows
    ]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def ratio(after: float, before: float) -> str:
    return f"{after / before:.2f}" if before else "–"


async def compare(
    label: str,
    workdir: Path,
    database_url: tuple[str, str],
    code: str,
    quick: bool,
    base: str,
    endpoints: list[str],
) -> str:
    """Before and after side by side, alternating per cell."""
    log(f"{label}: starting before and after (load {load()})")
    before = await start_target("before", workdir / label, database_url[0], code_path=code)
    try:
        after = await start_target("after", workdir / label, database_url[1])
    except BaseException:
        await stop_target(before)
        raise
    seconds, rounds = (1.5, 1) if quick else (3.0, 2)
    load_start = load()
    rows = [
        [
            "endpoint",
            "clients",
            "p50 ms before → after",
            "p95 ms before → after",
            "req/s before → after",
            "CPU ms/req before → after",
            "p95 ×",
            "req/s ×",
            "CPU ×",
        ]
    ]
    try:
        for what in endpoints:
            title = ENDPOINTS[what]
            for concurrency in CONCURRENCY:
                cells = {"before": Cell(), "after": Cell()}
                minimum = 10 if what in ("list", "page_list") else 30
                for round_number in range(rounds):
                    order = (before, after) if round_number % 2 == 0 else (after, before)
                    for target in order:
                        cell = await target.client.measure(
                            target.service.serve_pid,
                            target.urls(what),
                            concurrency,
                            seconds,
                            minimum,
                        )
                        cells[target.name].add(cell)
                b, a = cells["before"], cells["after"]
                failed = b.errors or a.errors
                title_note = f" (errors: {b.errors} → {a.errors})" if failed else ""
                log(
                    f"{label} {title} ×{concurrency}: p95 {b.p(0.95):.1f} → {a.p(0.95):.1f} ms, "
                    f"{b.rps:.0f} → {a.rps:.0f} req/s"
                )
                rows.append(
                    [
                        title + title_note,
                        str(concurrency),
                        f"{b.p(0.5):.1f} → {a.p(0.5):.1f}",
                        f"{b.p(0.95):.1f} → {a.p(0.95):.1f}",
                        f"{b.rps:.0f} → {a.rps:.0f}",
                        f"{b.cpu_ms:.1f} → {a.cpu_ms:.1f}",
                        ratio(a.p(0.95), b.p(0.95)),
                        ratio(a.rps, b.rps),
                        ratio(a.cpu_ms, b.cpu_ms),
                    ]
                )
    finally:
        await stop_target(before)
        await stop_target(after)
    head = (
        f"### {label}: before ({base}) → after, {WORKFLOWS} workflows, one serving "
        f"process\n\nload average at the start {load_start}, at the end {load()}\n"
    )
    return head + "\n" + table(rows) + "\n"


async def memory(label: str, workdir: Path, database_url: str) -> str:
    """RSS of the serving process while it serves 10,000 requests (8 clients; list of 50,
    detail, run detail)."""
    target = await start_target("memory", workdir / label, database_url)
    urls = target.urls("list50") * 20 + target.urls("detail") + target.urls("run")
    rows = [["requests served", "VmRSS MiB", "req/s in the slice"]]
    pid = target.service.serve_pid
    try:
        rows.append(["0", f"{status_field(pid, 'VmRSS') / 1024:.1f}", ""])
        served = 0
        while served < MEMORY_REQUESTS:
            cell = await target.client.measure(pid, urls, 8, 0.0, 1000)
            served += cell.count
            rows.append(
                [f"{served:,}", f"{status_field(pid, 'VmRSS') / 1024:.1f}", f"{cell.rps:.0f}"]
            )
    finally:
        await stop_target(target)
    return f"### memory of the serving process, {label} (load {load()})\n\n" + table(rows) + "\n"


async def workers(label: str, workdir: Path, database_url: tuple[str, str]) -> str:
    """Requests/s with ``signoff serve --workers 1`` and ``--workers 2``, alternating."""
    one = await start_target("workers1", workdir / label, database_url[0])
    try:
        two = await start_target(
            "workers2", workdir / label, database_url[1], serve_args=("--workers", "2")
        )
    except BaseException:
        await stop_target(one)
        raise
    rows = [
        [
            "endpoint",
            "clients",
            "req/s N=1",
            "req/s N=2",
            "×",
            "p95 ms N=1 → N=2",
            "server CPU ms/req N=1 → N=2",
            "bench client CPU ms/req",
        ]
    ]
    load_start = load()
    try:
        for what in ("detail", "list50", "page_workflow"):
            for concurrency in (8, 32):
                cells = {"workers1": Cell(), "workers2": Cell()}
                for round_number in range(2):
                    order = (one, two) if round_number % 2 == 0 else (two, one)
                    for target in order:
                        cell = await target.client.measure(
                            target.service.serve_pid, target.urls(what), concurrency, 3.0, 30
                        )
                        cells[target.name].add(cell)
                a, b = cells["workers1"], cells["workers2"]
                rows.append(
                    [
                        ENDPOINTS[what],
                        str(concurrency),
                        f"{a.rps:.0f}",
                        f"{b.rps:.0f}",
                        ratio(b.rps, a.rps),
                        f"{a.p(0.95):.1f} → {b.p(0.95):.1f}",
                        f"{a.cpu_ms:.1f} → {b.cpu_ms:.1f}",
                        f"{1000 * (a.client_cpu + b.client_cpu) / (a.count + b.count):.1f}",
                    ]
                )
                log(f"workers {label} {what} ×{concurrency}: {a.rps:.0f} → {b.rps:.0f} req/s")
    finally:
        await stop_target(one)
        await stop_target(two)
    return (
        f"### signoff serve --workers 1 vs 2, {label}\n\nload average at the start "
        f"{load_start}, at the end {load()}\n\n" + table(rows) + "\n"
    )


async def profile(workdir: Path, what: str, requests: int) -> str:
    """Fill a team through a served process, stop it, then serve ``what`` ``requests`` times
    in this process (httpx's ASGI transport, one at a time) under cProfile: where the time
    goes."""
    import cProfile
    import io
    import pstats

    from signoff.app import create_app
    from signoff.config import load_settings

    target = await start_target("profile", workdir, "")
    urls = target.urls(what)
    await stop_target(target)
    os.environ["SIGNOFF_DATA_DIR"] = str(target.service.workdir / "data")
    os.environ["SIGNOFF_TOKEN_SECRET"] = target.service.env["SIGNOFF_TOKEN_SECRET"]
    os.environ["SIGNOFF_LLM_MODEL"] = "offline"
    app = create_app(load_settings())
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        client = Client("http://bench", target.team.token)
        client.http = httpx.AsyncClient(transport=transport, base_url="http://bench")
        for url in urls[:20]:
            await client.get(url)
        profiler = cProfile.Profile()
        started = time.perf_counter()
        profiler.enable()
        for number in range(requests):
            await client.get(urls[number % len(urls)])
        profiler.disable()
        elapsed = time.perf_counter() - started
        await client.close()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("cumulative").print_stats(r"signoff/|fastapi/(routing|dependencies)", 40)
    stats.sort_stats("tottime").print_stats(25)
    return f"{what}: {1000 * elapsed / requests:.1f} ms/request in-process (profiled)\n" + (
        out.getvalue()
    )


def export_base(commit: str, into: Path) -> str:
    into.mkdir(parents=True)
    archive = subprocess.run(
        ["git", "archive", commit, "src"], cwd=REPO, check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return str(into / "src")


async def main(
    quick: bool, parts: str, base: str, keep: bool, profile_what: str, endpoints: list[str]
) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="signoff_api_bench_"))
    databases: list[str] = []

    def postgres(name: str) -> str:
        database = f"signoff_bench_{os.getpid()}_{name}"
        databases.append(database)
        return create_database(database)

    log(f"work directory {workdir}; load {load()}; {os.cpu_count()} CPUs")
    out: list[str] = []
    failed = False
    try:
        if profile_what:
            print(await profile(workdir, profile_what, 200 if profile_what != "list" else 30))
            return
        code = export_base(base, workdir / "base")
        if "s" in parts:
            out.append(
                await compare("inline/SQLite", workdir, ("", ""), code, quick, base, endpoints)
            )
            print(out[-1], flush=True)
        if "p" in parts:
            urls = (postgres("before"), postgres("after"))
            out.append(
                await compare("inline/PostgreSQL", workdir, urls, code, quick, base, endpoints)
            )
            print(out[-1], flush=True)
        if "m" in parts:
            out.append(await memory("inline/SQLite", workdir, ""))
            print(out[-1], flush=True)
            out.append(await memory("inline/PostgreSQL", workdir, postgres("memory")))
            print(out[-1], flush=True)
        if "w" in parts:
            out.append(await workers("inline/SQLite", workdir, ("", "")))
            print(out[-1], flush=True)
            urls = (postgres("w1"), postgres("w2"))
            out.append(await workers("inline/PostgreSQL", workdir, urls))
            print(out[-1], flush=True)
    except BaseException:
        failed = True
        raise
    finally:
        for database in databases:
            drop_database(database)
        if failed or keep:
            log(f"logs kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="shorter cells, one round")
    parser.add_argument("--only", default="spmw", help="parts: s, p, m, w (default all)")
    parser.add_argument("--base", default=BASE_COMMIT, help="the 'before' commit")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument(
        "--profile", default="", choices=["", *ENDPOINTS], help="profile one endpoint, in-process"
    )
    parser.add_argument(
        "--endpoints",
        default=",".join(ENDPOINTS),
        help=f"the before/after cells to measure, comma-separated: {','.join(ENDPOINTS)}",
    )
    args = parser.parse_args()
    chosen = args.endpoints.split(",")
    if unknown := set(chosen) - set(ENDPOINTS):
        parser.error(f"unknown endpoints: {', '.join(sorted(unknown))}")
    asyncio.run(main(args.quick, args.only, args.base, args.keep, args.profile, chosen))
