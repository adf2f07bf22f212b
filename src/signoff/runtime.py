"""What runs in a process besides the HTTP API: the mail sender, the job queue, the engine.

``signoff serve`` starts a :class:`Runtime` in its lifespan: with ``SIGNOFF_QUEUE=inline`` the
engine's workers run right there; with ``procrastinate`` the API only defers jobs and
``signoff worker`` processes (any number, any machine) execute them.

``signoff serve --workers N`` runs one Runtime, in the first process; the N-1 others only
serve HTTP and hand what their commits defer to it over a local socket (:class:`HandOver`), so
there is exactly one engine, scheduler and mail sender (docs/architecture.md, Scaling out).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from typing import Any

from pydantic_ai.models import Model

from signoff.config import Settings
from signoff.db import Database
from signoff.llm.metered import MeteredModel
from signoff.llm.models import build_model
from signoff.llm.offline import OfflineModel
from signoff.mail.sender import MailSender
from signoff.mail.service import wrote_mail
from signoff.metrics.instruments import prepare_tools
from signoff.planner import offline as planner_offline
from signoff.queue.inline import InlineQueue
from signoff.queue.jobs import JobQueue, StepJob, deferred
from signoff.queue.procrastinate_queue import ProcrastinateQueue
from signoff.runs.executor import StepExecutor
from signoff.scheduling import service as scheduling
from signoff.tools import offline as tools_offline
from signoff.tools.registry import TOOLS

logger = logging.getLogger(__name__)

# What the offline model answers: a plan for the planner, every tool's step for the executor.
OFFLINE_HANDLERS = {**planner_offline.HANDLERS, **tools_offline.HANDLERS}


def build_llm(settings: Settings) -> Model:
    """The model the settings name, with the offline model able to plan and run every step."""
    return build_model(settings, offline_handlers=OFFLINE_HANDLERS)


def metered_llm(settings: Settings) -> Model:
    """:func:`build_llm`'s model, its requests measured for /metrics: what the service uses."""
    return MeteredModel(build_llm(settings))


def offline_model(delay_seconds: float = 0.0) -> OfflineModel:
    """The built-in offline model, complete (for tests and benchmarks)."""
    return OfflineModel(OFFLINE_HANDLERS, delay_seconds=delay_seconds)


class Runtime:
    def __init__(self, settings: Settings, db: Database, model: Model) -> None:
        self.settings = settings
        self.db = db
        self.mail_sender = MailSender(db, settings)
        self.queue: InlineQueue | ProcrastinateQueue
        if settings.queue == "procrastinate":
            if db.is_sqlite:
                raise ValueError("SIGNOFF_QUEUE=procrastinate needs a PostgreSQL database")
            self.queue = ProcrastinateQueue(
                settings.effective_database_url, sweep_interval=settings.sweep_interval_seconds
            )
        else:
            self.queue = InlineQueue(
                concurrency=settings.worker_concurrency,
                sweep_interval=settings.sweep_interval_seconds,
            )
        queue: JobQueue = self.queue
        prepare_tools(TOOLS)  # every tool's step series, at zero until it runs
        self.executor = StepExecutor(
            db=db, settings=settings, model=model, queue=queue, wake_mail=self.mail_sender.wake
        )
        self._mail_task: asyncio.Task[None] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._handed_over: set[asyncio.Task[None]] = set()
        db.on_commit = self._after_commit

    async def _after_commit(self, session_info: dict[Any, Any]) -> None:
        """What a committed write deferred: its jobs go to the queue, its mail to the sender."""
        for job in deferred(session_info):
            await self.queue.enqueue(job)
        if wrote_mail(session_info):
            self.mail_sender.wake()

    def listen(self, link: socket.socket) -> None:
        """Take what an HTTP-only process hands over (:class:`HandOver`) as if committed here."""
        loop = asyncio.get_running_loop()

        def readable() -> None:
            try:
                message = link.recv(HandOver.MAX_MESSAGE)
            except BlockingIOError:
                return
            if not message:  # that process exited
                loop.remove_reader(link.fileno())
                return
            if message == HandOver.MAIL:
                self.mail_sender.wake()
            else:
                run_id, step_index, attempt = map(int, message.split())
                task = asyncio.create_task(self.queue.enqueue(StepJob(run_id, step_index, attempt)))
                self._handed_over.add(task)
                task.add_done_callback(self._handed_over.discard)

        link.setblocking(False)
        loop.add_reader(link.fileno(), readable)

    async def start(self) -> None:
        """Start the mail sender and, for the inline queue, the engine's workers (which first
        sweep: unfinished work from before a restart is picked up at once)."""
        self._mail_task = asyncio.create_task(self.mail_sender.run(), name="signoff-mail")
        self._tasks.append(asyncio.create_task(self._schedule_loop(), name="signoff-scheduler"))
        if isinstance(self.queue, InlineQueue):
            self.queue.start(self.executor.execute, self.executor.sweep)
        else:
            await self.queue.open()
        # With --workers, this line says which process runs the background parts.
        logger.info(
            "background parts started: mail sender, scheduler, %s",
            "run engine" if isinstance(self.queue, InlineQueue) else "job queue (procrastinate)",
        )

    async def run_worker(self) -> None:
        """``signoff worker``: execute procrastinate jobs until cancelled."""
        assert isinstance(self.queue, ProcrastinateQueue)
        await self.queue.run_worker(
            self.executor.execute, self.executor.sweep, concurrency=self.settings.worker_concurrency
        )

    async def schedule_tick(self) -> int:
        """Fire every due schedule once (the runs it starts are queued as each fire commits).
        Returns the fires logged."""
        results = await scheduling.tick(self.db, self.settings)
        return sum(len(result.fires) for result in results)

    async def _schedule_loop(self) -> None:
        # Every process runs one (serve, and each worker): the claim makes each due time fire
        # exactly once however many there are.
        while True:
            try:
                await self.schedule_tick()
            except Exception:  # e.g. the database is briefly unreachable
                logger.exception("scheduler tick failed")
            await asyncio.sleep(self.settings.schedule_tick_seconds)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        if isinstance(self.queue, InlineQueue):
            await self.queue.stop()
        else:
            await self.queue.close()
        # Last, so the mail the stopped work wrote is not cut off mid-delivery (see stop()).
        if self._mail_task is not None:
            await self.mail_sender.stop(self._mail_task)
            self._mail_task = None


class HandOver:
    """An HTTP-only process's side of ``--workers``: what its commits defer goes, after the
    commit, to the process that runs the :class:`Runtime`, over one end of a local
    ``SOCK_SEQPACKET`` socket pair (a message per job or mail wake; the other end is
    :meth:`Runtime.listen`). A message lost (the first process busy or gone) costs only time:
    the engine's sweep finds work no job names and the mail sender polls the outbox."""

    MAIL = b"mail"
    MAX_MESSAGE = 64

    def __init__(self, link: socket.socket) -> None:
        self.link = link
        link.setblocking(False)

    def _send(self, message: bytes) -> None:
        try:
            self.link.send(message)
        except OSError as error:  # full, or the first process is gone
            logger.warning("could not hand over %r: %s", message, error)

    async def after_commit(self, session_info: dict[Any, Any]) -> None:
        for job in deferred(session_info):
            self._send(f"{job.run_id} {job.step_index} {job.attempt}".encode())
        if wrote_mail(session_info):
            self._send(self.MAIL)
