"""The inline backend: an asyncio worker inside ``signoff serve`` (one machine).

Jobs are ids in an in-memory queue; the truth is in the database, so nothing is lost when the
process dies: on start, and every ``sweep_interval_seconds``, the sweep queues every step that
is ready (including leases a crash left behind). A run waiting for approval is in no queue and
holds no task (docs/engine.md, invariant 8).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime

from signoff.kit.clock import utc_now
from signoff.queue.jobs import StepJob

logger = logging.getLogger(__name__)


class InlineQueue:
    """A de-duplicating in-process queue with ``concurrency`` worker tasks and a sweep loop."""

    def __init__(self, *, concurrency: int, sweep_interval: float) -> None:
        self.concurrency = concurrency
        self.sweep_interval = sweep_interval
        self._queue: asyncio.Queue[StepJob] = asyncio.Queue()
        self._known: set[StepJob] = set()  # queued or being executed: enqueue twice = once
        self._timers: set[asyncio.TimerHandle] = set()
        self._tasks: list[asyncio.Task[None]] = []

    async def enqueue(self, job: StepJob, *, not_before: datetime | None = None) -> None:
        delay = (not_before - utc_now()).total_seconds() if not_before else 0.0
        if delay > 0:
            # Delayed retries: a timer, and the sweep as a safety net if the clock was moved.
            loop = asyncio.get_running_loop()
            handle = loop.call_later(delay, self._put, job)
            self._timers.add(handle)
            return
        self._put(job)

    def _put(self, job: StepJob) -> None:
        if job in self._known:
            return
        self._known.add(job)
        self._queue.put_nowait(job)

    def start(
        self,
        execute: Callable[[StepJob], Awaitable[None]],
        sweep: Callable[[], Awaitable[int]],
    ) -> None:
        for number in range(self.concurrency):
            self._tasks.append(
                asyncio.create_task(self._work(execute), name=f"signoff-worker-{number}")
            )
        self._tasks.append(asyncio.create_task(self._sweep_loop(sweep), name="signoff-sweep"))

    async def _work(self, execute: Callable[[StepJob], Awaitable[None]]) -> None:
        while True:
            job = await self._queue.get()
            try:
                await execute(job)
            except asyncio.CancelledError:
                raise
            except Exception:  # a worker never dies; the sweep retries the step
                logger.exception("job %s failed", job.key)
            finally:
                self._known.discard(job)
                self._queue.task_done()

    async def _sweep_loop(self, sweep: Callable[[], Awaitable[int]]) -> None:
        while True:
            try:
                await sweep()
            except asyncio.CancelledError:
                raise
            except Exception:  # e.g. the database is briefly unreachable
                logger.exception("sweep failed")
            await asyncio.sleep(self.sweep_interval)

    async def idle(self) -> None:
        """Wait until nothing is queued or executing (for tests and benchmarks)."""
        await self._queue.join()

    async def stop(self) -> None:
        for handle in self._timers:
            handle.cancel()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
