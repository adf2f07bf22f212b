"""Benchmark of the run engine, driven over HTTP against real ``signoff`` processes.

    .venv/bin/python bench/engine.py            # the full run (10-12 minutes on 2 cores)
    .venv/bin/python bench/engine.py --quick    # a smoke run of every part (about 3 minutes)

(a) throughput with a zero-latency model (offline, no delay): 5-step workflows, many runs at
    once, on inline/SQLite (``signoff serve``) and procrastinate/PostgreSQL (``signoff serve``
    + 2 ``signoff worker``); CPU per step of the executing processes, split into the LLM
    library's share (an agent run measured in this process) and the engine's own;
(b) latency: 100 concurrent runs in one inline worker, the model taking 2 s per call: the
    median step duration (startedAt → finishedAt from the API) against 2 s;
(c) 1,000 runs waiting for approval: RSS, threads and asyncio tasks of the serve process at
    0, 250, 500 and 1,000 waiting runs.

bench/README.md explains how to read the output.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _agent_cost import FIVE_STEPS, PLAN_GOAL
from _agent_cost import measure as measure_agent
from _harness import (
    Api,
    BackendCpu,
    CpuMeter,
    Service,
    bounded,
    create_database,
    drop_database,
    status_field,
)
from _inprocess import measure as measure_sql

TARGET_ENGINE_MS = 3.0
MODEL_DELAY = 2.0
# The offline planner's plan for this goal: generate_outline, then format_post (approval-gated;
# the plan rules want an outline before a post), so each run pauses at its second step.
POST_GOAL = "Write a LinkedIn post about our new electric bike range"


@dataclass(frozen=True)
class Sizes:
    width: int  # workflows (so runs) in flight at once in (a)
    rounds: int  # measured runs per workflow in (a)
    profile_rounds: int  # runs per workflow in (a)'s sampled window
    agent_runs: int  # in-process agent-cost runs (5 steps each)
    latency_runs: int  # (b)
    waiting: tuple[int, ...]  # (c) checkpoints
    waiting_warmup: int


FULL = Sizes(32, 4, 1, 20, 100, (0, 250, 500, 1000), 10)
QUICK = Sizes(8, 3, 2, 5, 20, (0, 10, 20, 40), 5)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


# -- driving runs -------------------------------------------------------------------------------


@dataclass
class Drive:
    runs: int = 0
    failed: list[str] = field(default_factory=list)
    first_start: datetime | None = None
    last_finish: datetime | None = None

    @property
    def seconds(self) -> float:
        assert self.first_start is not None
        assert self.last_finish is not None
        return (self.last_finish - self.first_start).total_seconds()


async def drive(
    api: Api, workflows: list[str], rounds: int, *, first: str = "run", poll: float = 0.5
) -> Drive:
    """Run every workflow ``rounds`` times, starting the next run of a workflow as soon as its
    previous one is seen completed; one ``GET /api/workflows`` per ``poll`` watches them all.
    ``first="activate"`` starts the first run by approving the plan."""
    result = Drive()
    left = dict.fromkeys(workflows, rounds)
    in_flight: dict[str, int] = {}

    async def start(workflow_id: str, how: str = "run") -> None:
        if how == "activate":
            in_flight[workflow_id] = await api.activate(workflow_id)
        else:
            in_flight[workflow_id] = await api.start_run(workflow_id)
        left[workflow_id] -= 1

    await bounded(32, (start(w, first) for w in workflows if left[w] > 0))
    while in_flight:
        await asyncio.sleep(poll)
        latest = await api.latest_runs()
        again = []
        for workflow_id, run_id in list(in_flight.items()):
            run = latest.get(workflow_id)
            if run is None or run["id"] != run_id or run["status"] not in ("completed", "failed"):
                continue
            del in_flight[workflow_id]
            if run["status"] == "failed":
                result.failed.append(f"run {run_id}: {run['failureReason']}")
                continue
            result.runs += 1
            started, finished = parse_time(run["startedAt"]), parse_time(run["finishedAt"])
            result.first_start = min(result.first_start or started, started)
            result.last_finish = max(result.last_finish or finished, finished)
            if left[workflow_id] > 0:
                again.append(workflow_id)
        await bounded(32, (start(w) for w in again))
    return result


# -- (a) throughput -----------------------------------------------------------------------------


@dataclass
class Throughput:
    label: str
    steps: int
    seconds: float
    cpu_total: float  # executing processes: serve (inline) or the workers (procrastinate)
    cpu_main: float  # their event-loop threads
    api_cpu: float | None  # procrastinate: the serve process (HTTP API only)
    postgres_cpu: float | None
    failed: list[str]
    profile: dict[str, int]
    profile_top: dict[str, dict[str, int]]
    profile_cpu_per_step: float
    # The sampled window's CPU seconds in the executing processes: all threads, the event-loop
    # threads, and ``Database.write_direct``'s threads (the rest is the async drivers' threads).
    sampled_cpu: dict[str, float]
    # A: the LLM library's CPU per step, measured in this process right before and right after
    # the measured window (the machine's speed drifts; the two bracket the window).
    agent: list[dict[str, Any]]

    @property
    def llm(self) -> float:
        return statistics.fmean(a["mean"] for a in self.agent)

    @property
    def per_step(self) -> float:
        return self.cpu_total / self.steps

    @property
    def busy_samples(self) -> int:
        return sum(n for bucket, n in self.profile.items() if bucket != IDLE)

    def share(self, bucket: str) -> float:
        return self.profile.get(bucket, 0) / self.busy_samples if self.busy_samples else 0.0

    def _sampled_ms(self, seconds: float) -> float:
        """CPU per step of a part of the sampled window: its share of that window's CPU times
        the CPU per step of the unsampled window. At least 0: the clocks are read a moment
        apart, so "none" can come out as -0.00."""
        cpu = self.sampled_cpu["cpu"]
        return max(0.0, seconds / cpu * self.per_step * 1000) if cpu else 0.0

    def gc_ms(self, generation: str) -> float:
        """The garbage collector's CPU per step in one generation."""
        return self._sampled_ms(self.sampled_cpu[f"gc{generation}"])

    def thread_ms(self, kind: str) -> float:
        """CPU per step of the non-main threads of one kind: "direct" (``write_direct``'s) or
        "drivers" (the rest: aiosqlite's)."""
        cpu = self.sampled_cpu
        other = cpu["cpu"] - cpu["main"]
        return self._sampled_ms(cpu["direct"] if kind == "direct" else other - cpu["direct"])

    @property
    def sampled_llm(self) -> float:
        """B, in seconds per step."""
        return self.bucket_ms("agent run") / 1000

    def without_api(self, llm: float) -> float:
        """Engine's own (total − ``llm``, A or B) less the HTTP API the bench drives: for
        inline, the API's sampled bucket (its Python and, through the greenlet, its ORM
        statements) and the drivers' threads (the API's SQLite statements; the engine and the
        mail sender use direct transactions, see the SQL table); procrastinate's API runs
        elsewhere."""
        own = self.per_step - llm
        if self.api_cpu is None:
            own -= (self.bucket_ms("HTTP API") + self.thread_ms("drivers")) / 1000
        return own

    def bucket_ms(self, bucket: str) -> float:
        """A bucket's CPU per step: its share of the event-loop thread's samples times the
        event-loop thread's CPU per step (from the unsampled window)."""
        return self.share(bucket) * self.cpu_main / self.steps * 1000


async def throughput(
    label: str, sizes: Sizes, workdir: Path, *, database: str | None = None
) -> Throughput:
    procrastinate = database is not None
    service = Service(
        workdir,
        queue="procrastinate" if procrastinate else "inline",
        database_url=create_database(database) if database else "",
        workers=2 if procrastinate else 0,
    )
    log(f"(a) {label}: starting signoff")
    await service.start()
    api = Api(service.base_url)
    try:
        await api.signup()
        workflows = await bounded(
            8, (api.workflow(PLAN_GOAL, FIVE_STEPS) for _ in range(sizes.width))
        )
        log(f"(a) {label}: warm-up (plan approval starts run 1 of {len(workflows)} workflows)")
        warm = await drive(api, workflows, 1, first="activate")
        if warm.failed:
            raise RuntimeError(f"warm-up runs failed: {warm.failed[:3]}")
        executing = (
            {f"worker{n}": pid for n, pid in enumerate(service.worker_pids)}
            if procrastinate
            else {"serve": service.serve_pid}
        )
        meter = CpuMeter(executing | ({"api": service.serve_pid} if procrastinate else {}))
        backends = BackendCpu(database) if database else None
        log(f"(a) {label}: A, {sizes.agent_runs} in-process runs of 5 agent steps")
        agent = [await measure_agent(sizes.agent_runs)]
        log(f"(a) {label}: measuring {sizes.width} × {sizes.rounds} runs of 5 steps")
        meter.start()
        if backends:
            backends.start()
        measured = await drive(api, workflows, sizes.rounds, poll=1.0)
        meter.stop()
        postgres_cpu = backends.stop() if backends else None
        log(f"(a) {label}: A again")
        agent.append(await measure_agent(sizes.agent_runs))
        prefix = "worker" if procrastinate else "serve"

        log(f"(a) {label}: sampled window ({sizes.width} × {sizes.profile_rounds} runs)")
        sampled_meter = CpuMeter(executing)
        sampled_meter.start()
        counts = service.start_sampling(executing.values())
        sampled = await drive(api, workflows, sizes.profile_rounds, poll=1.0)
        sampled_meter.stop()
        profiles = await service.stop_sampling(counts)
        buckets: dict[str, int] = {}
        sampled_cpu = {
            key: sum(p[f"{key}_cpu" if key != "cpu" else "cpu"] for p in profiles)
            for key in ("cpu", "main", "direct")
        }
        for gen in ("0", "1", "2"):
            sampled_cpu[f"gc{gen}"] = sum(p["gc_cpu"].get(gen, 0.0) for p in profiles)
        top: dict[str, dict[str, int]] = {}
        for profile in profiles:
            for bucket, n in profile["buckets"].items():
                buckets[bucket] = buckets.get(bucket, 0) + n
            for bucket, places in profile["top"].items():
                into = top.setdefault(bucket, {})
                for place, n in places.items():
                    into[place] = into.get(place, 0) + n
        return Throughput(
            label=label,
            steps=measured.runs * 5,
            seconds=measured.seconds,
            cpu_total=meter.total(prefix),
            cpu_main=meter.main_thread(prefix),
            api_cpu=meter.total("api") if procrastinate else None,
            postgres_cpu=postgres_cpu,
            failed=measured.failed + sampled.failed,
            profile=buckets,
            profile_top=top,
            profile_cpu_per_step=sampled_meter.total() / max(1, sampled.runs * 5),
            sampled_cpu=sampled_cpu,
            agent=agent,
        )
    finally:
        await api.close()
        await service.stop()


# -- (b) latency --------------------------------------------------------------------------------


@dataclass
class Latency:
    runs: int
    steps: list[float]
    handoffs: list[float]
    run_seconds: list[float]
    cpu: float
    wall: float
    failed: list[str]


async def latency(sizes: Sizes, workdir: Path) -> Latency:
    runs = sizes.latency_runs
    service = Service(workdir, delay=MODEL_DELAY)
    log(f"(b) starting signoff (inline, model delay {MODEL_DELAY} s, default concurrency)")
    await service.start()
    api = Api(service.base_url)
    try:
        await api.signup()
        log(f"(b) drafting {runs} workflows (the planner call also takes {MODEL_DELAY} s)")
        workflows = await bounded(50, (api.workflow(PLAN_GOAL, FIVE_STEPS) for _ in range(runs)))
        meter = CpuMeter({"serve": service.serve_pid})
        log(f"(b) approving {runs} plans at once: {runs} runs of 5 steps")
        meter.start()
        began = time.monotonic()
        result = await drive(api, workflows, 1, first="activate", poll=1.0)
        wall = time.monotonic() - began
        meter.stop()
        latest = await api.latest_runs()
        details = await bounded(
            16, (api.run_detail(w, latest[w]["id"]) for w in workflows if w in latest)
        )
    finally:
        await api.close()
        await service.stop()
    steps: list[float] = []
    handoffs: list[float] = []
    run_seconds: list[float] = []
    for run in details:
        if run["status"] != "completed":
            continue
        run_seconds.append(
            (parse_time(run["finishedAt"]) - parse_time(run["startedAt"])).total_seconds()
        )
        previous = None
        for step in run["steps"]:
            started, finished = parse_time(step["startedAt"]), parse_time(step["finishedAt"])
            steps.append((finished - started).total_seconds())
            if previous is not None:
                handoffs.append((started - previous).total_seconds())
            previous = finished
    return Latency(result.runs, steps, handoffs, run_seconds, meter.total(), wall, result.failed)


# -- (c) waiting runs ---------------------------------------------------------------------------


@dataclass
class Checkpoint:
    waiting: int
    rss_kib: int
    threads: int
    tasks: int | None
    task_kinds: dict[str, int]
    gc_objects: int
    idle_cpu_per_s: float
    database_mib: float


async def waiting_runs(sizes: Sizes, workdir: Path) -> tuple[list[Checkpoint], float]:
    service = Service(workdir)
    log("(c) starting signoff (inline/SQLite)")
    await service.start()
    api = Api(service.base_url)
    pid = service.serve_pid
    began = time.monotonic()

    async def park(count: int) -> list[tuple[str, int]]:
        """``count`` workflows whose run pauses at format_post, awaiting approval."""

        async def one() -> tuple[str, int]:
            workflow_id = await api.workflow(POST_GOAL)
            return workflow_id, await api.activate(workflow_id)

        parked = await bounded(8, (one() for _ in range(count)))
        for workflow_id, run_id in parked:
            while True:
                runs = await api.runs(workflow_id)
                status = next(r["status"] for r in runs if r["id"] == run_id)
                if status == "awaiting_approval":
                    break
                if status in ("failed", "completed"):
                    raise RuntimeError(f"run {run_id} is {status}, not awaiting approval")
                await asyncio.sleep(0.2)
        return parked

    async def checkpoint(waiting: int) -> Checkpoint:
        await asyncio.sleep(3)  # let the mail sender drain the outbox
        before = CpuMeter({"serve": pid})
        before.start()
        await asyncio.sleep(5)  # idle: the sweep and the mail sender only
        before.stop()
        rss_kib, threads = status_field(pid, "VmRSS"), status_field(pid, "Threads")
        snap = await service.snapshot(pid)  # after: its gc.get_objects() list costs memory
        point = Checkpoint(
            waiting=waiting,
            rss_kib=rss_kib,
            threads=threads,
            tasks=snap["asyncio_tasks"],
            task_kinds=snap["task_kinds"],
            gc_objects=snap["gc_objects"],
            idle_cpu_per_s=before.total() / 5,
            database_mib=sum(path.stat().st_size for path in (workdir / "data").glob("signoff.db*"))
            / 2**20,
        )
        log(
            f"(c) {waiting} waiting: RSS {point.rss_kib / 1024:.1f} MiB, "
            f"{point.tasks} asyncio tasks, {point.threads} threads"
        )
        return point

    try:
        await api.signup()
        log(f"(c) warm-up: {sizes.waiting_warmup} runs paused for approval, then stopped")
        for workflow_id, run_id in await park(sizes.waiting_warmup):
            await api.stop_run(workflow_id, run_id)
        points = []
        waiting = 0
        for target in sizes.waiting:
            if target > waiting:
                log(f"(c) parking {target - waiting} more runs")
                await park(target - waiting)
                waiting = target
            points.append(await checkpoint(waiting))
        return points, time.monotonic() - began
    finally:
        await api.close()
        await service.stop()


# -- the report ---------------------------------------------------------------------------------


def table(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for number, row in enumerate(rows):
        cells = [row[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)
        ]
        lines.append("  ".join(cells).rstrip())
        if number == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def ms(seconds: float | None) -> str:
    return "n/a" if seconds is None else f"{seconds * 1000:.2f}"


IDLE = "idle loop (another thread's CPU)"
BUCKETS = [
    "agent run",
    "database (SQLAlchemy)",
    "engine",
    "queue (procrastinate)",
    "HTTP API",
    "mail sender",
    "event loop / other",
]


def report_throughput(results: list[Throughput], sql: dict[str, Any]) -> str:
    rows = [["(a) zero-latency model, 5-step runs"] + [r.label for r in results]]

    def row(name: str, values: list[str]) -> None:
        rows.append([name, *values])

    def vs_target(seconds: float) -> str:
        return f"{ms(seconds)} (×{seconds * 1000 / TARGET_ENGINE_MS:.1f})"

    row("steps completed (measured window)", [str(r.steps) for r in results])
    row("steps per second", [f"{r.steps / r.seconds:.1f}" for r in results])
    row(
        "CPU ms/step of the executing processes",
        [f"{ms(r.per_step)} ({'serve' if r.api_cpu is None else '2 workers'})" for r in results],
    )
    row("  event-loop threads", [ms(r.cpu_main / r.steps) for r in results])
    row("  other threads", [ms((r.cpu_total - r.cpu_main) / r.steps) for r in results])
    row("    direct transactions (signoff-db)", [f"{r.thread_ms('direct'):.2f}" for r in results])
    row("    async drivers (aiosqlite's)", [f"{r.thread_ms('drivers'):.2f}" for r in results])
    row("LLM library ms/step: A = agent run in-process", [ms(r.llm) for r in results])
    row(
        "  A before / after the measured window",
        [" / ".join(ms(a["mean"]) for a in r.agent) for r in results],
    )
    row(
        "  B = agent run sampled in the process",
        [f"{r.bucket_ms('agent run'):.2f}" for r in results],
    )
    row(
        "engine's own = total − A  (× the 3 ms target)",
        [vs_target(r.per_step - r.llm) for r in results],
    )
    row(
        "engine's own = total − B  (× the 3 ms target)",
        [vs_target(r.per_step - r.sampled_llm) for r in results],
    )
    row("engine's own (total − A) ÷ A", [f"{(r.per_step - r.llm) / r.llm:.2f}" for r in results])
    row(
        "  of which the HTTP API it serves (sampled)",
        [f"{r.bucket_ms('HTTP API'):.2f}" if r.api_cpu is None else "elsewhere" for r in results],
    )
    row(
        "engine's own without the HTTP API, − A (× target)",
        [vs_target(r.without_api(r.llm)) for r in results],
    )
    row("  ÷ A", [f"{r.without_api(r.llm) / r.llm:.2f}" for r in results])
    row(
        "engine's own without the HTTP API, − B (× target)",
        [vs_target(r.without_api(r.sampled_llm)) for r in results],
    )
    row("  ÷ B", [f"{r.without_api(r.sampled_llm) / r.sampled_llm:.2f}" for r in results])
    row(
        "serve CPU ms/step (HTTP API only)",
        [ms(r.api_cpu / r.steps) if r.api_cpu is not None else "above" for r in results],
    )
    row(
        "PostgreSQL server CPU ms/step",
        [ms(r.postgres_cpu / r.steps) if r.postgres_cpu is not None else "n/a" for r in results],
    )
    row("failed runs", [str(len(r.failed)) for r in results])
    if len(results) == 2:
        ratio = (results[1].steps / results[1].seconds) / (results[0].steps / results[0].seconds)
        row("steps/s ratio, right ÷ left", ["", f"{ratio:.2f}"])
    out = [table(rows)]

    prof = [["(a) event-loop CPU by bucket (sampled), ms/step (%)"] + [r.label for r in results]]
    for bucket in BUCKETS:
        if any(r.profile.get(bucket) for r in results):
            prof.append(
                [bucket]
                + [f"{r.bucket_ms(bucket):.2f} ({r.share(bucket) * 100:.0f}%)" for r in results]
            )
    db = []
    for r in results:
        sqlite_threads = (r.cpu_total - r.cpu_main) / r.steps * 1000
        db.append(f"{r.bucket_ms('database (SQLAlchemy)') + sqlite_threads:.2f}")
    prof.append(["database incl. SQLite's threads, ms/step", *db])
    prof.append(
        [
            "garbage collector, ms/step (generations 0 / 1 / 2)",
            *[" / ".join(f"{r.gc_ms(gen):.2f}" for gen in "012") for r in results],
        ]
    )
    prof.append(["busy samples", *[str(r.busy_samples) for r in results]])
    prof.append(
        [
            "CPU ms/step while sampled (overhead check)",
            *[f"{r.profile_cpu_per_step * 1000:.2f}" for r in results],
        ]
    )
    out.append(table(prof))

    db_rows = [["(a) SQL per step (in-process, inline/SQLite)", "value"]]
    db_rows.append(["statements per step (engine)", f"{sql['statements_per_step']:.1f}"])
    db_rows.append(["  of which BEGIN (transactions)", f"{sql['transactions_per_step']:.2f}"])
    db_rows.append(["  of which ORM (not direct)", f"{sql['orm_statements_per_step']:.2f}"])
    db_rows.append(["statements per run start (API)", f"{sql['api_statements_per_run']:.1f}"])
    db_rows.append(["statements per run (mail sender)", f"{sql['mail_statements_per_run']:.1f}"])
    db_rows.append(["  of which ORM (not direct)", f"{sql['mail_orm_statements_per_run']:.2f}"])
    db_rows.append(["CPU ms per ORM statement (the run lock)", ms(sql["orm_statement_cpu"])])
    db_rows.append(["CPU ms per empty write transaction", ms(sql["empty_write_cpu"])])
    db_rows.append(["CPU ms/step in-process (API + engine + mail)", ms(sql["cpu_per_step"])])
    kinds = ", ".join(f"{k} {v:.1f}" for k, v in sql["by_kind"].items())
    out.append(table(db_rows) + "\nengine statements per step: " + kinds)

    agent = results[0].agent[0]
    by_tool = [[f"A: LLM library CPU by tool ({results[0].label}, before)", "ms/agent run"]]
    by_tool += [[tool, ms(value)] for tool, value in agent["by_tool"].items()]
    by_tool.append([f"mean of {agent['samples']}", ms(agent["mean"])])
    out.append(table(by_tool))

    hot = ["(a) hottest places per bucket (samples, both backends)"]
    merged: dict[str, dict[str, int]] = {}
    for r in results:
        for bucket, places in r.profile_top.items():
            into = merged.setdefault(bucket, {})
            for place, n in places.items():
                into[place] = into.get(place, 0) + n
    for bucket in BUCKETS:
        places = sorted(merged.get(bucket, {}).items(), key=lambda kv: -kv[1])[:4]
        if places:
            hot.append(f"  {bucket}: " + ", ".join(f"{p} ({n})" for p, n in places))
    out.append("\n".join(hot))
    for r in results:
        if r.failed:
            out.append(f"{r.label}: failed runs, e.g. {r.failed[:3]}")
    return "\n\n".join(out)


def report_latency(result: Latency, capacity: float | None) -> str:
    steps = result.steps
    med = statistics.median(steps)
    rows = [
        [f"(b) {result.runs} concurrent runs, model {MODEL_DELAY:.0f} s per call", "value"],
        ["steps measured", str(len(steps))],
        ["step duration median, s", f"{med:.3f}"],
        ["step duration p95, s", f"{percentile(steps, 0.95):.3f}"],
        ["step duration max, s", f"{max(steps):.3f}"],
        [f"median ÷ {MODEL_DELAY:.0f} s (target ≤ 1.10)", f"{med / MODEL_DELAY:.3f}"],
        [f"p95 ÷ {MODEL_DELAY:.0f} s", f"{percentile(steps, 0.95) / MODEL_DELAY:.3f}"],
        [
            "hand-off between steps median / p95, s",
            f"{statistics.median(result.handoffs):.3f} / {percentile(result.handoffs, 0.95):.3f}",
        ],
        [
            "run duration median ÷ 5 × 2 s",
            f"{statistics.median(result.run_seconds) / (5 * MODEL_DELAY):.3f}",
        ],
        ["serve CPU busy (CPU s ÷ wall s)", f"{result.cpu / result.wall:.2f}"],
        ["steps/s the runs ask for (runs ÷ 2 s)", f"{result.runs / MODEL_DELAY:.1f}"],
        [
            "steps/s inline/SQLite can do, from (a)",
            f"{capacity:.1f}" if capacity is not None else "run (a) too",
        ],
        ["failed runs", str(len(result.failed))],
    ]
    return table(rows)


def report_waiting(points: list[Checkpoint]) -> str:
    rows = [["(c) runs awaiting approval", *[str(p.waiting) for p in points]]]
    rows.append(["serve RSS, MiB", *[f"{p.rss_kib / 1024:.1f}" for p in points]])
    rows.append(["threads", *[str(p.threads) for p in points]])
    rows.append(["asyncio tasks", *[str(p.tasks) for p in points]])
    rows.append(["gc-tracked objects, thousands", *[f"{p.gc_objects / 1000:.0f}" for p in points]])
    rows.append(["idle CPU, ms per s", *[f"{p.idle_cpu_per_s * 1000:.1f}" for p in points]])
    rows.append(["SQLite files, MiB", *[f"{p.database_mib:.1f}" for p in points]])
    out = [table(rows)]
    by_n = {p.waiting: p for p in points}
    ordered = sorted(by_n)
    last, quarter = by_n[ordered[-1]], by_n[ordered[1] if len(ordered) > 1 else ordered[0]]
    first = by_n[ordered[0]]
    growth = (last.rss_kib - quarter.rss_kib) / max(1, last.waiting - quarter.waiting)
    out.append(
        f"RSS@{last.waiting} ÷ RSS@{quarter.waiting} = {last.rss_kib / quarter.rss_kib:.3f};  "
        f"RSS@{last.waiting} ÷ RSS@{first.waiting} = {last.rss_kib / first.rss_kib:.3f};  "
        f"≈ {growth:.1f} KiB per extra waiting run"
    )
    out.append(
        f"asyncio tasks@{last.waiting} − tasks@{first.waiting} = "
        f"{(last.tasks or 0) - (first.tasks or 0)};  threads@{last.waiting} − "
        f"threads@{first.waiting} = {last.threads - first.threads}"
    )
    out.append("tasks at the end: " + ", ".join(f"{k} ×{n}" for k, n in last.task_kinds.items()))
    return "\n".join(out)


# -- main ---------------------------------------------------------------------------------------


async def main(quick: bool, json_path: str | None, parts: str, keep: bool) -> None:
    sizes = QUICK if quick else FULL
    started = time.monotonic()
    load_start = Path("/proc/loadavg").read_text().split()[0]
    capacity: float | None = None
    sections: list[str] = []
    raw: dict[str, Any] = {"quick": quick}
    database = f"signoff_bench_{os.getpid()}"
    root = Path(tempfile.mkdtemp(prefix="signoff_bench_"))
    ok = False
    try:
        if "a" in parts:
            log("(a) SQL per step: in-process, 8 workflows × 2 runs")
            sql = await measure_sql(8, 2)
            inline = await throughput("inline/SQLite", sizes, root / "a-inline")
            pg = await throughput(
                "procrastinate/PostgreSQL", sizes, root / "a-pg", database=database
            )
            sections.append(report_throughput([inline, pg], sql))
            capacity = inline.steps / inline.seconds
            raw["a"] = {
                "sql": sql,
                "inline": inline.__dict__,
                "procrastinate": pg.__dict__,
            }
        if "b" in parts:
            lat = await latency(sizes, root / "b")
            sections.append(report_latency(lat, capacity))
            raw["b"] = lat.__dict__
        if "c" in parts:
            points, seconds = await waiting_runs(sizes, root / "c")
            sections.append(report_waiting(points))
            raw["c"] = [p.__dict__ for p in points]
            log(f"(c) took {seconds:.0f} s")
        ok = True
    finally:
        drop_database(database)
        if ok and not keep:
            shutil.rmtree(root, ignore_errors=True)
        else:
            log(f"logs of the signoff processes kept in {root}")
    elapsed = time.monotonic() - started
    print()
    print(
        f"Signoff engine bench ({'quick' if quick else 'full'}), {os.cpu_count()} CPUs, "
        f"{time.strftime('%Y-%m-%d %H:%M')}, {elapsed:.0f} s; load average at start "
        f"{load_start}, at end {Path('/proc/loadavg').read_text().split()[0]}"
    )
    print()
    print("\n\n".join(sections))
    if json_path:
        Path(json_path).write_text(json.dumps(raw, indent=1, default=str))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smaller, faster smoke run")
    parser.add_argument("--json", metavar="PATH", help="also write the raw figures as JSON")
    parser.add_argument("--only", default="abc", help="run only these parts, e.g. --only b")
    parser.add_argument("--keep", action="store_true", help="keep the processes' logs")
    args = parser.parse_args()
    asyncio.run(main(args.quick, args.json, args.only, args.keep))
