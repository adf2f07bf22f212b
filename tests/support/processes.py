"""Real Signoff processes for the crash, multi-process, serve and browser tests.

:class:`Processes` starts ``signoff serve`` / ``signoff worker`` (and one-shot commands such as
``signoff db upgrade``) the way users do: the console script, settings from ``SIGNOFF_*``
variables, a scratch working directory so no ``.env`` is read. It keeps each one's output in a
log file and always stops them (SIGKILL at the latest). Every test that starts one carries the
``processes`` marker (tests/conftest.py fails a test that does not).

Below it, helpers that read what the processes did: procrastinate's jobs and workers, the outbox.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg
import pytest
from sqlalchemy import select

from signoff.db import Database
from signoff.models import MailStatus, OutboxMail
from tests.support.ports import free_port
from tests.support.postgres import libpq
from tests.support.settings import BASE_URL, FAST_PASSWORDS, ROOMY_BUDGETS, TOKEN_SECRET
from tests.support.smtp import FakeSmtpServer
from tests.support.waiting import wait_until, wait_until_sync

SIGNOFF = Path(sys.executable).with_name("signoff")
# How long a ``signoff serve`` may take to answer: generous, for a machine busy with the whole
# suite; a process that exits fails the wait at once, with its output.
STARTUP_TIMEOUT = 120.0
_marked = False


def set_marked(marked: bool) -> None:
    """Whether the test about to run carries the ``processes`` marker (tests/conftest.py)."""
    global _marked
    _marked = marked


def signoff_env(*, defaults: bool = True, **settings: object) -> dict[str, str]:
    """The environment of a Signoff process: this one's, minus any ``SIGNOFF_*`` of the
    developer's, plus ``settings`` (``smtp_url="…"`` → ``SIGNOFF_SMTP_URL=…``) over the tests'
    defaults (none with ``defaults=False``: a new user's zero configuration)."""
    base: dict[str, object] = {
        "base_url": BASE_URL,  # links in emails: tests.support.mailbox.links_in reads them
        "token_secret": TOKEN_SECRET,  # an in-process API verifies the links workers sign
        "mail_poll_seconds": 0.2,
        **FAST_PASSWORDS,
        **ROOMY_BUDGETS,
    }
    env = {key: value for key, value in os.environ.items() if not key.startswith("SIGNOFF_")}
    for name, value in ((base if defaults else {}) | settings).items():
        env[f"SIGNOFF_{name.upper()}"] = str(value)
    return env


def _check_marked(command: str) -> None:
    if not _marked:
        pytest.fail(
            f"`signoff {command}` started by a test without @pytest.mark.processes: mark it, "
            "so that `pytest -m 'not processes'` stays the fast loop"
        )


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
    """Signoff processes of one test (or module); :meth:`close` stops every one of them.
    ``signoff`` is the console script they run: this environment's, or one a test installed."""

    workdir: Path
    started: list[Process] = field(default_factory=list)
    signoff: Path = SIGNOFF

    def start(
        self,
        command: str,
        name: str,
        *,
        args: tuple[str, ...] = (),
        defaults: bool = True,
        **settings: object,
    ) -> Process:
        _check_marked(command)
        log = self.workdir / f"{name}.log"
        with log.open("ab") as sink:
            popen = subprocess.Popen(
                [str(self.signoff), command, *args],
                cwd=self.workdir,
                env=signoff_env(defaults=defaults, **settings),
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
        process = Process(name, popen, log)
        self.started.append(process)
        return process

    def serve(
        self,
        name: str = "serve",
        port: int | None = None,
        *,
        args: tuple[str, ...] = (),
        defaults: bool = True,
        **settings: object,
    ) -> tuple[Process, str]:
        """``signoff serve`` (with ``args``) on ``port`` (default: a free one); returns it and
        its base URL once its health endpoint answers."""
        port = port or free_port()
        if defaults:
            settings = {"host": "127.0.0.1", **settings}
        process = self.start("serve", name, args=args, defaults=defaults, port=port, **settings)
        base = f"http://127.0.0.1:{port}"

        def answers() -> bool:
            try:
                return httpx.get(f"{base}/healthz", timeout=1).status_code == 200
            except httpx.TransportError:
                return False

        wait_until_sync(
            answers,
            lambda: f"{name} to answer on {base}; its output:\n{process.output()[-4000:]}",
            timeout=STARTUP_TIMEOUT,
            watch=(process,),
        )
        return process, base

    def run(self, *command: str, timeout: float = 120, **settings: object) -> None:
        """A one-shot command (``run("db", "upgrade")``) to its end; fails with its output
        unless it exits 0."""
        _check_marked(" ".join(command))
        done = subprocess.run(
            [str(self.signoff), *command],
            cwd=self.workdir,
            env=signoff_env(**settings),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        assert done.returncode == 0, (
            f"signoff {' '.join(command)} failed:\n{done.stdout}{done.stderr}"
        )

    def close(self) -> None:
        for process in self.started:  # all at once: graceful stops take a moment each
            process.terminate()
        for process in self.started:
            process.stop()
        # Shown by pytest only when the test failed: what each process said, its warnings and
        # errors first (in full: the tail alone may have lost the first of them).
        for process in self.started:
            output = process.output()
            print(f"----- {process.name} (pid {process.pid}) -----")
            print(f"warnings and errors:\n{notable_lines(output)}\nlast lines:\n{output[-6000:]}")


_LEVEL = re.compile(r"^\S+ \S+ \[\d+\] (\w+) ")


def notable_lines(output: str) -> str:
    """The lines of a process's log at WARNING or above, each with what follows it up to the
    next log line (a traceback)."""
    kept: list[str] = []
    keep = False
    for line in output.splitlines():
        level = _LEVEL.match(line)
        if level is not None:
            keep = level.group(1) in ("WARNING", "ERROR", "CRITICAL")
        if keep:
            kept.append(line)
    return "\n".join(kept)


@contextmanager
def processes(workdir: Path, signoff: Path = SIGNOFF) -> Iterator[Processes]:
    started = Processes(workdir, signoff=signoff)
    try:
        yield started
    finally:
        started.close()


# -- procrastinate ------------------------------------------------------------------------------


def wait_for_workers(url: str, count: int, watch: tuple[Process, ...], timeout: float = 60) -> None:
    """Block until ``count`` procrastinate workers registered themselves in the database."""
    with psycopg.connect(libpq(url), autocommit=True) as conn:

        def registered() -> bool:
            row = conn.execute("SELECT count(*) FROM procrastinate_workers").fetchone()
            return row is not None and row[0] >= count

        wait_until_sync(registered, f"{count} workers to start", timeout=timeout, watch=watch)


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

    rows = await wait_until(all_sent, f"every email to {address} to be delivered", timeout=timeout)
    received = Counter(str(m["Message-ID"]) for m in smtp.messages if m["To"] == address)
    assert received == Counter({row.message_id: 1 for row in rows}), received
    return Counter(row.kind for row in rows)
