"""The procrastinate backend: a PostgreSQL job queue for workers on any number of machines.

- ``enqueue`` defers ``signoff.execute_step`` after the commit, with a queueing lock per step
  attempt, so a job waiting for a worker is never queued twice (a second enqueue is ignored).
- ``signoff worker`` runs the worker; every worker also runs the periodic sweep (one tick runs
  once across all workers): it re-defers ready steps (after a crash between commit and defer,
  or a lease that ran out) and retries jobs stalled on a dead worker. Double deliveries are
  harmless: a job whose step moved on does nothing. An hourly task deletes old succeeded jobs.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from procrastinate import App, PsycopgConnector
from procrastinate.exceptions import AlreadyEnqueued
from psycopg import AsyncConnection
from sqlalchemy.engine import make_url

from signoff.queue.jobs import StepJob

logger = logging.getLogger(__name__)

QUEUE_NAME = "signoff"
EXECUTE_TASK = "signoff.execute_step"
SWEEP_TASK = "signoff.sweep"
CLEANUP_TASK = "signoff.remove_old_jobs"
# Succeeded jobs are kept this long (to see which worker ran what), then deleted: the sweep
# alone leaves one job per tick, 17,280 a day at the default interval.
FINISHED_JOBS_KEPT_HOURS = 24


def conninfo(database_url: str) -> str:
    """A libpq connection string from the application's SQLAlchemy URL."""
    url = make_url(database_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


def sweep_cron(interval: float) -> str:
    """The periodic sweep's schedule: every ``interval`` seconds (whole, at least 1).

    procrastinate reads cron with croniter, where seconds are an optional *sixth* field, after
    the usual five: ``*/5 * * * * *`` would mean every second of every fifth minute.
    """
    seconds = max(1, round(interval))
    if seconds < 60:
        return f"* * * * * */{seconds}"
    return f"*/{min(59, round(seconds / 60))} * * * *"


async def _autocommit(connection: AsyncConnection[Any]) -> None:
    await connection.set_autocommit(True)


class ProcrastinateQueue:
    """One per process. Tasks are closures over this object, so they reach this process's
    engine; jobs carry only ids."""

    def __init__(self, database_url: str, *, sweep_interval: float) -> None:
        # Autocommit: each of procrastinate's queries is one statement (a function call), a
        # transaction by itself, which the pool's connections would otherwise wrap in BEGIN and
        # COMMIT: two more round trips each, on every fetch and every finished job.
        # (Not the connections' autocommit keyword: procrastinate's listener passes it too.)
        connector = PsycopgConnector(conninfo=conninfo(database_url), configure=_autocommit)
        self.app = App(connector=connector)
        self._execute: Callable[[StepJob], Awaitable[None]] | None = None
        self._sweep: Callable[[], Awaitable[int]] | None = None

        @self.app.task(name=EXECUTE_TASK, queue=QUEUE_NAME)
        async def execute_step(run_id: int, step_index: int, attempt: int) -> None:
            assert self._execute is not None, "this process runs no worker"
            await self._execute(StepJob(run_id, step_index, attempt))

        @self.app.periodic(cron=sweep_cron(sweep_interval), periodic_id="sweep")
        @self.app.task(name=SWEEP_TASK, queue=QUEUE_NAME, queueing_lock=SWEEP_TASK)
        async def sweep(timestamp: int) -> None:
            if self._sweep is not None:
                await self._sweep()
            await self.retry_stalled_jobs()

        @self.app.periodic(cron="17 * * * *", periodic_id="cleanup")  # hourly
        @self.app.task(name=CLEANUP_TASK, queue=QUEUE_NAME, queueing_lock=CLEANUP_TASK)
        async def remove_old_jobs(timestamp: int) -> None:
            await self.remove_old_jobs()

        self._execute_task = execute_step

    async def open(self) -> None:
        await self.app.open_async()

    async def close(self) -> None:
        await self.app.close_async()

    async def enqueue(self, job: StepJob, *, not_before: datetime | None = None) -> None:
        options: dict[str, Any] = {"queueing_lock": job.key}
        if not_before is not None:
            options["schedule_at"] = not_before
        # AlreadyEnqueued: the same step attempt is already waiting for a worker.
        with contextlib.suppress(AlreadyEnqueued):
            await self._execute_task.configure(**options).defer_async(
                run_id=job.run_id, step_index=job.step_index, attempt=job.attempt
            )

    async def retry_stalled_jobs(self, seconds_since_heartbeat: float = 60) -> int:
        """Jobs left 'doing' by a worker that died (SIGKILL, lost machine) go back to 'todo'."""
        stalled = list(
            await self.app.job_manager.get_stalled_jobs(
                seconds_since_heartbeat=seconds_since_heartbeat
            )
        )
        for job in stalled:
            logger.warning("retrying job %s stalled on a dead worker", job.id)
            await self.app.job_manager.retry_job(job)
        return len(stalled)

    async def remove_old_jobs(self, hours: int = FINISHED_JOBS_KEPT_HOURS) -> None:
        """Delete this queue's jobs that succeeded more than ``hours`` ago (failed ones stay,
        for inspection)."""
        await self.app.job_manager.delete_old_jobs(nb_hours=hours, queue=QUEUE_NAME)

    async def run_worker(
        self,
        execute: Callable[[StepJob], Awaitable[None]],
        sweep: Callable[[], Awaitable[int]],
        *,
        concurrency: int,
        wait: bool = True,
    ) -> None:
        """Execute jobs until cancelled, or stopped by SIGTERM / SIGINT (or, with
        ``wait=False``, until none is left).

        The first SIGTERM (what systemd, Docker and Kubernetes send) or SIGINT stops fetching
        jobs and lets the steps in flight finish (up to 30 s); then the worker unregisters and
        this returns. A second signal kills the process; its steps wait for their leases.
        """
        self._execute = execute
        self._sweep = sweep
        await self.app.run_worker_async(
            queues=[QUEUE_NAME],
            concurrency=concurrency,
            wait=wait,
            install_signal_handlers=True,
            listen_notify=True,
            shutdown_graceful_timeout=30,
        )
