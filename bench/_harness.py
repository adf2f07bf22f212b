"""Processes and measurements for ``bench/engine.py``.

:class:`Service` starts Signoff the way a user does — ``signoff db upgrade``, ``signoff serve``
and, with procrastinate, ``signoff worker`` processes — configured by environment variables
only, in a temporary data directory, on a free loopback port. :class:`Api` drives it over HTTP.
The ``/proc`` readers measure CPU time and memory of those processes from outside.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx

BENCH = Path(__file__).resolve().parent
SIGNOFF = Path(sys.executable).with_name("signoff")
POSTGRES_ADMIN = os.environ.get(
    "SIGNOFF_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
)
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
T = TypeVar("T")


# -- /proc ------------------------------------------------------------------------------------


def cpu_seconds(pid: int, tid: int | None = None) -> float:
    """utime + stime of a process (all its threads, dead ones included) or of one thread."""
    path = f"/proc/{pid}/stat" if tid is None else f"/proc/{pid}/task/{tid}/stat"
    with open(path, encoding="ascii") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def status_field(pid: int, name: str) -> int:
    """A number from /proc/<pid>/status (``VmRSS`` in KiB, ``Threads``)."""
    with open(f"/proc/{pid}/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith(name + ":"):
                return int(line.split()[1])
    raise KeyError(name)


@dataclass
class CpuMeter:
    """CPU seconds used by a set of processes between :meth:`start` and :meth:`stop`; for each
    process also its main (event-loop) thread, whose thread id is the process id."""

    pids: dict[str, int]
    extra: dict[int, float] = field(default_factory=dict)
    _start: dict[str, tuple[float, float]] = field(default_factory=dict)
    result: dict[str, tuple[float, float]] = field(default_factory=dict)

    def _read(self) -> dict[str, tuple[float, float]]:
        return {name: (cpu_seconds(pid), cpu_seconds(pid, pid)) for name, pid in self.pids.items()}

    def start(self) -> None:
        self._start = self._read()

    def stop(self) -> dict[str, tuple[float, float]]:
        end = self._read()
        self.result = {
            name: (end[name][0] - self._start[name][0], end[name][1] - self._start[name][1])
            for name in end
        }
        return self.result

    def total(self, prefix: str = "") -> float:
        return sum(cpu for name, (cpu, _) in self.result.items() if name.startswith(prefix))

    def main_thread(self, prefix: str = "") -> float:
        return sum(main for name, (_, main) in self.result.items() if name.startswith(prefix))


# -- PostgreSQL ---------------------------------------------------------------------------------


def _admin(sql: str) -> list[tuple[Any, ...]]:
    import psycopg

    with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as conn:
        cursor = conn.execute(sql)  # type: ignore[arg-type]
        return cursor.fetchall() if cursor.description else []


def create_database(name: str) -> str:
    _admin(f'CREATE DATABASE "{name}"')
    base = POSTGRES_ADMIN.rsplit("/", 1)[0]
    return f"{base}/{name}"


def drop_database(name: str) -> None:
    with contextlib.suppress(Exception):
        _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def postgres_backend_pids(database: str) -> list[int]:
    rows = _admin(f"SELECT pid FROM pg_stat_activity WHERE datname = '{database}'")  # noqa: S608
    return [int(pid) for (pid,) in rows]


class BackendCpu:
    """CPU of the PostgreSQL server processes serving one database (those alive at the end;
    the pools keep their connections, so few come and go)."""

    def __init__(self, database: str) -> None:
        self.database = database
        self._start: dict[int, float] = {}

    def _read(self) -> dict[int, float]:
        found = {}
        for pid in postgres_backend_pids(self.database):
            with contextlib.suppress(OSError):
                found[pid] = cpu_seconds(pid)
        return found

    def start(self) -> None:
        self._start = self._read()

    def stop(self) -> float:
        end = self._read()
        return sum(cpu - self._start.get(pid, 0.0) for pid, cpu in end.items())


# -- processes ----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Service:
    """``signoff serve`` (+ ``signoff worker`` × ``workers``) in ``workdir``."""

    def __init__(
        self,
        workdir: Path,
        *,
        queue: str = "inline",
        database_url: str = "",
        delay: float = 0.0,
        workers: int = 0,
        code_path: str = "",
        serve_args: tuple[str, ...] = (),
    ) -> None:
        """``code_path`` goes first on the processes' ``PYTHONPATH`` (the ``src`` of another
        checkout, to bench that code); ``serve_args`` are added to ``signoff serve``."""
        self.workdir = workdir
        self.serve_args = serve_args
        self.workers = workers
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.probe_dir = workdir / "probe"
        self.probe_dir.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("SIGNOFF_")}
        env |= {
            "SIGNOFF_DATA_DIR": str(workdir / "data"),
            "SIGNOFF_HOST": "127.0.0.1",
            "SIGNOFF_PORT": str(self.port),
            "SIGNOFF_TOKEN_SECRET": secrets.token_urlsafe(48),
            "SIGNOFF_LLM_MODEL": "offline",
            "SIGNOFF_QUEUE": queue,
            "SIGNOFF_OFFLINE_DELAY_SECONDS": str(delay),
            "SIGNOFF_BENCH_PROBE_DIR": str(self.probe_dir),
            "PYTHONPATH": os.pathsep.join(
                p for p in (code_path, str(BENCH / "probe"), os.environ.get("PYTHONPATH", "")) if p
            ),
        }
        if database_url:
            env["SIGNOFF_DATABASE_URL"] = database_url
        self.env = env
        self.serve: subprocess.Popen[bytes] | None = None
        self.worker_processes: list[subprocess.Popen[bytes]] = []

    def _spawn(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        log = open(self.workdir / f"{name}.log", "wb")  # noqa: SIM115 - lives with the process
        return subprocess.Popen(
            [str(SIGNOFF), *args], cwd=self.workdir, env=self.env, stdout=log, stderr=log
        )

    def log_tail(self, name: str, lines: int = 30) -> str:
        path = self.workdir / f"{name}.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    async def start(self) -> None:
        upgrade = await asyncio.to_thread(
            subprocess.run,
            [str(SIGNOFF), "db", "upgrade"],
            cwd=self.workdir,
            env=self.env,
            capture_output=True,
        )
        if upgrade.returncode != 0:
            raise RuntimeError(f"signoff db upgrade failed:\n{upgrade.stderr.decode()}")
        self.serve = self._spawn("serve", "serve", *self.serve_args)
        for number in range(self.workers):
            self.worker_processes.append(self._spawn(f"worker{number}", "worker"))
        deadline = time.monotonic() + 180  # imports take a while on a busy 2-core machine
        async with httpx.AsyncClient(base_url=self.base_url) as client:
            while True:
                with contextlib.suppress(httpx.TransportError):
                    if (await client.get("/healthz", timeout=2)).status_code == 200:
                        break
                if self.serve.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"signoff serve did not start:\n{self.log_tail('serve')}")
                await asyncio.sleep(0.2)
        # A worker is ready once procrastinate's worker loop logs its start.
        for number, process in enumerate(self.worker_processes):
            while "Starting worker" not in self.log_tail(f"worker{number}", 200):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"signoff worker did not start:\n{self.log_tail(f'worker{number}')}"
                    )
                await asyncio.sleep(0.2)

    @property
    def serve_pid(self) -> int:
        assert self.serve is not None
        return self.serve.pid

    @property
    def worker_pids(self) -> list[int]:
        return [process.pid for process in self.worker_processes]

    async def stop(self) -> None:
        processes = [p for p in (self.serve, *self.worker_processes) if p is not None]
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
            else:  # the bench never stops them early: someone else did, or they crashed
                print(
                    f"signoff {' '.join(map(str, process.args[1:]))} (pid {process.pid}) had "
                    f"exited on its own with code {process.returncode}; logs in {self.workdir}",
                    file=sys.stderr,
                )
        for process in processes:
            try:
                await asyncio.to_thread(process.wait, 30)
            except subprocess.TimeoutExpired:
                process.kill()
                await asyncio.to_thread(process.wait)

    # -- the probe (bench/probe/sitecustomize.py) -------------------------------------------

    def _probe_records(self, pid: int) -> list[dict[str, Any]]:
        path = self.probe_dir / f"probe-{pid}.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    async def _await_record(self, pid: int, kind: str, before: int) -> dict[str, Any]:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            records = [r for r in self._probe_records(pid) if r["kind"] == kind]
            if len(records) > before:
                return records[-1]
            await asyncio.sleep(0.05)
        raise RuntimeError(f"process {pid} wrote no {kind} record")

    async def snapshot(self, pid: int) -> dict[str, Any]:
        """asyncio tasks, threads and gc objects of ``pid``, as its event loop sees them."""
        before = len([r for r in self._probe_records(pid) if r["kind"] == "snapshot"])
        os.kill(pid, signal.SIGUSR1)
        return await self._await_record(pid, "snapshot", before)

    def start_sampling(self, pids: Iterable[int]) -> dict[int, int]:
        counts = {}
        for pid in pids:
            counts[pid] = len([r for r in self._probe_records(pid) if r["kind"] == "profile"])
            os.kill(pid, signal.SIGUSR2)
        return counts

    async def stop_sampling(self, counts: dict[int, int]) -> list[dict[str, Any]]:
        for pid in counts:
            os.kill(pid, signal.SIGUSR2)
        return [await self._await_record(pid, "profile", before) for pid, before in counts.items()]


# -- HTTP ---------------------------------------------------------------------------------------


async def bounded(limit: int, calls: Iterable[Awaitable[T]]) -> list[T]:
    """Await ``calls`` with at most ``limit`` in flight, results in order."""
    semaphore = asyncio.Semaphore(limit)

    async def one(call: Awaitable[T]) -> T:
        async with semaphore:
            return await call

    return await asyncio.gather(*(one(call) for call in calls))


class Api:
    """The HTTP calls the bench makes, as one signed-up user."""

    def __init__(self, base_url: str) -> None:
        self.client = httpx.AsyncClient(
            base_url=base_url,
            timeout=httpx.Timeout(120),
            # Idle connections are dropped well before uvicorn's 5 s keep-alive timeout: with
            # httpx's default (also 5 s) a request could go out on a connection the server was
            # closing, and fail with "Server disconnected" / ReadError.
            limits=httpx.Limits(
                max_connections=128, max_keepalive_connections=128, keepalive_expiry=1.0
            ),
        )
        self.headers: dict[str, str] = {}

    async def close(self) -> None:
        await self.client.aclose()

    async def _call(self, method: str, url: str, expect: int, **kwargs: Any) -> Any:
        response = await self.client.request(method, url, headers=self.headers, **kwargs)
        if response.status_code != expect:
            raise RuntimeError(f"{method} {url} → {response.status_code}: {response.text[:500]}")
        return response.json()

    async def signup(self) -> None:
        body = {"email": "bench@example.com", "password": "correct horse battery staple"}
        data = await self._call("POST", "/api/auth/signup", 201, json=body)
        self.headers = {"Authorization": f"Bearer {data['token']}"}

    async def workflow(self, goal: str, steps: list[dict[str, Any]] | None = None) -> str:
        """A draft for ``goal`` (planned by the model), its plan then set to exactly ``steps``
        if given."""
        draft = await self._call("POST", "/api/workflows", 201, json={"goal": goal})
        workflow_id: str = draft["workflowId"]
        if steps is None:
            return workflow_id
        await self._call(
            "POST",
            f"/api/workflows/{workflow_id}/steps",
            200,
            json={"mode": "replace", "steps": steps},
        )
        return workflow_id

    async def activate(self, workflow_id: str) -> int:
        """Approve the plan; the first run starts. Returns its run id."""
        detail = await self._call("POST", f"/api/workflows/{workflow_id}/activate", 200)
        run_id: int = detail["workflowRuns"][0]["id"]
        return run_id

    async def start_run(self, workflow_id: str) -> int:
        data = await self._call("POST", f"/api/workflows/{workflow_id}/run", 201)
        run_id: int = data["runId"]
        return run_id

    async def latest_runs(self) -> dict[str, dict[str, Any]]:
        """Every workflow's latest run, in one request."""
        rows = await self._call("GET", "/api/workflows", 200)
        return {row["id"]: row["latestRun"] for row in rows if row["latestRun"]}

    async def runs(self, workflow_id: str) -> list[dict[str, Any]]:
        page = await self._call("GET", f"/api/workflows/{workflow_id}/runs", 200)
        runs: list[dict[str, Any]] = page["runs"]
        return runs

    async def run_detail(self, workflow_id: str, run_id: int) -> dict[str, Any]:
        detail: dict[str, Any] = await self._call(
            "GET", f"/api/workflows/{workflow_id}/runs/{run_id}", 200
        )
        return detail

    async def stop_run(self, workflow_id: str, run_id: int) -> None:
        await self._call("POST", f"/api/workflows/{workflow_id}/runs/{run_id}/stop", 200)
