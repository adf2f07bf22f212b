"""Real Signoff processes for crash and multi-process tests.

- :class:`Processes` starts ``signoff serve`` / ``signoff worker`` the way users do (the console
  script, settings from ``SIGNOFF_*`` variables, a scratch working directory so no ``.env`` is
  read), keeps each one's output in a log file, and always stops them (SIGKILL at the latest).
- :func:`fresh_postgres_database`: a new, migrated PostgreSQL database (our tables and
  procrastinate's) for one test or module, dropped afterwards, so worker processes never see
  another test's jobs. With no server reachable it skips loudly (fails under ``CI=true``), like
  the ``postgres_database_url`` fixture.
- Helpers that read what the processes did: step jobs in procrastinate's table, the outbox.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import httpx
import psycopg
import pytest
from sqlalchemy import select
from sqlalchemy.engine import make_url

from signoff.db import Database
from signoff.migrations.runner import upgrade
from signoff.models import MailStatus, OutboxMail
from tests.conftest import IN_CI, POSTGRES_URL, _postgres_notice, _server_reachable
from tests.fakes.smtp import FakeSmtpServer, free_port

SIGNOFF = Path(sys.executable).with_name("signoff")
# The same secret as tests.conftest.make_settings: an in-process API verifies the step links
# that worker processes sign.
TOKEN_SECRET = "test-secret-" + "x" * 40
T = TypeVar("T")


def signoff_env(**settings: object) -> dict[str, str]:
    """The environment of a Signoff process: this one's, minus any ``SIGNOFF_*`` of the
    developer's, plus ``settings`` (``smtp_url="…"`` → ``SIGNOFF_SMTP_URL=…``)."""
    base: dict[str, object] = {
        "base_url": "http://testserver",  # links in emails: tests.support.links_in reads them
        "token_secret": TOKEN_SECRET,
        "mail_poll_seconds": 0.2,
        "password_time_cost": 1,
        "password_memory_kib": 64,
    }
    env = {key: value for key, value in os.environ.items() if not key.startswith("SIGNOFF_")}
    for name, value in (base | settings).items():
        env[f"SIGNOFF_{name.upper()}"] = str(value)
    return env


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def check_alive(self) -> None:
        if not self.alive():
            pytest.fail(
                f"{self.name} exited with {self.popen.returncode}:\n{self.output()[-4000:]}"
            )

    def kill(self) -> None:
        """kill -9: no cleanup of any kind, as when a machine dies."""
        if self.alive():
            os.kill(self.pid, signal.SIGKILL)
        self.popen.wait(timeout=10)

    def pause(self) -> None:
        os.kill(self.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self.pid, signal.SIGCONT)

    def terminate(self) -> None:
        if self.alive():
            self.resume()  # a paused process would not act on SIGTERM
            self.popen.terminate()

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM, then SIGKILL if it has not exited within ``timeout`` seconds."""
        self.terminate()
        try:
            self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()


@dataclass
class Processes:
    """Signoff processes of one test (or module); :meth:`close` stops every one of them."""

    workdir: Path
    started: list[Process] = field(default_factory=list)

    def start(self, command: str, name: str, **settings: object) -> Process:
        log = self.workdir / f"{name}.log"
        with log.open("ab") as sink:
            popen = subprocess.Popen(
                [str(SIGNOFF), command],
                cwd=self.workdir,
                env=signoff_env(**settings),
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
        process = Process(name, popen, log)
        self.started.append(process)
        return process

    def serve(
        self, name: str = "serve", port: int | None = None, **settings: object
    ) -> tuple[Process, str]:
        """``signoff serve`` on ``port`` (default: a free one); returns it and its base URL
        once it answers."""
        port = port or free_port()
        process = self.start("serve", name, host="127.0.0.1", port=port, **settings)
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            process.check_alive()
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    return process, base
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        pytest.fail(f"{name} did not answer within 60 s:\n{process.output()[-4000:]}")

    def close(self) -> None:
        for process in self.started:  # all at once: graceful stops take a moment each
            process.terminate()
        for process in self.started:
            process.stop()
        # Shown by pytest only when the test failed: what each process said.
        for process in self.started:
            print(f"----- {process.name} (pid {process.pid}) -----\n{process.output()[-6000:]}")


@contextmanager
def processes(workdir: Path) -> Iterator[Processes]:
    started = Processes(workdir)
    try:
        yield started
    finally:
        started.close()


async def eventually(
    probe: Callable[[], Awaitable[T | None]],
    what: str,
    *,
    timeout: float = 20.0,
    interval: float = 0.05,
    watch: tuple[Process, ...] = (),
) -> T:
    """Poll ``probe`` until it returns something other than None/False; fail after
    ``timeout`` seconds (or at once when a watched process died)."""
    deadline = time.monotonic() + timeout
    while True:
        value = await probe()
        if value is not None and value is not False:
            return value
        for process in watch:
            process.check_alive()
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(interval)


# -- PostgreSQL ---------------------------------------------------------------------------------


def require_postgres() -> None:
    """Skip loudly without a PostgreSQL server (fail under CI=true), as tests/conftest.py does."""
    problem = _server_reachable(POSTGRES_URL)
    if problem is None:
        return
    message = f"No PostgreSQL server at {POSTGRES_URL}: {problem}"
    if IN_CI:
        pytest.fail(f"{message} (CI=true: PostgreSQL tests must run)")
    _postgres_notice.append(message + " — set SIGNOFF_TEST_POSTGRES_URL or start one.")
    pytest.skip(message)


@contextmanager
def fresh_postgres_database(label: str) -> Iterator[str]:
    """A new database migrated to head (procrastinate's schema included); dropped at the end."""
    require_postgres()
    name = f"signoff_{label}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    try:
        upgrade(url)
        yield url
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def wait_for_workers(url: str, count: int, watch: tuple[Process, ...], timeout: float = 60) -> None:
    """Block until ``count`` procrastinate workers registered themselves in the database."""
    deadline = time.monotonic() + timeout
    with psycopg.connect(libpq(url), autocommit=True) as conn:
        while True:
            row = conn.execute("SELECT count(*) FROM procrastinate_workers").fetchone()
            if row is not None and row[0] >= count:
                return
            for process in watch:
                process.check_alive()
            if time.monotonic() > deadline:
                pytest.fail(f"{count} workers did not start within {timeout} s")
            time.sleep(0.05)


@dataclass(frozen=True)
class QueuedStep:
    """One ``signoff.execute_step`` job of procrastinate's table."""

    id: int
    step_index: int
    attempt: int
    status: str
    worker_id: int | None
    queueing_lock: str | None


async def step_jobs(url: str, run_id: int) -> list[QueuedStep]:
    async with await psycopg.AsyncConnection.connect(libpq(url), autocommit=True) as conn:
        cursor = await conn.execute(
            "SELECT id, (args->>'step_index')::int, (args->>'attempt')::int, status::text, "
            "worker_id, queueing_lock FROM procrastinate_jobs "
            "WHERE task_name = 'signoff.execute_step' AND (args->>'run_id')::int = %s ORDER BY id",
            (run_id,),
        )
        return [QueuedStep(*row) for row in await cursor.fetchall()]


async def job_status(url: str, job_id: int) -> str | None:
    async with await psycopg.AsyncConnection.connect(libpq(url), autocommit=True) as conn:
        cursor = await conn.execute(
            "SELECT status::text FROM procrastinate_jobs WHERE id = %s", (job_id,)
        )
        row = await cursor.fetchone()
    return None if row is None else str(row[0])


async def worker_ids(url: str) -> set[int]:
    async with await psycopg.AsyncConnection.connect(libpq(url), autocommit=True) as conn:
        cursor = await conn.execute("SELECT id FROM procrastinate_workers")
        return {int(row[0]) for row in await cursor.fetchall()}


# -- mail ---------------------------------------------------------------------------------------


async def outbox_of(database_url: str, address: str) -> list[OutboxMail]:
    db = Database.from_url(database_url)
    try:
        async with db.read() as session:
            rows = await session.scalars(
                select(OutboxMail).where(OutboxMail.to_address == address).order_by(OutboxMail.id)
            )
            return list(rows)
    finally:
        await db.dispose()


async def emails_sent_once(
    database_url: str, smtp: FakeSmtpServer, address: str, *, timeout: float = 15
) -> Counter[str]:
    """Wait until every outbox row to ``address`` was delivered, check the SMTP server got
    each exactly once (by Message-ID) and nothing else; return the kinds delivered."""

    async def all_sent() -> list[OutboxMail] | None:
        rows = await outbox_of(database_url, address)
        received = {str(m["Message-ID"]) for m in smtp.messages if m["To"] == address}
        done = all(row.status == MailStatus.SENT for row in rows)
        return rows if done and received >= {row.message_id for row in rows} else None

    rows = await eventually(all_sent, f"every email to {address} to be delivered", timeout=timeout)
    received = Counter(str(m["Message-ID"]) for m in smtp.messages if m["To"] == address)
    assert received == Counter({row.message_id: 1 for row in rows}), received
    return Counter(row.kind for row in rows)
