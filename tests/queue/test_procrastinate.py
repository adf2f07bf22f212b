"""The procrastinate backend on PostgreSQL with real ``signoff worker`` processes (issue 4).

One fresh database per module (our tables and procrastinate's), two worker processes and a
real SMTP server. The API runs in this process with ``SIGNOFF_QUEUE=procrastinate``: it only
defers jobs and registers no procrastinate worker, so every step below was executed by one of
the two worker processes (their ids are the only ones in ``procrastinate_workers``).

The 50 concurrent ``POST /run`` are proven on PostgreSQL by tests/runs/test_run_endpoints.py.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from asgi_lifespan import LifespanManager
from procrastinate.exceptions import AlreadyEnqueued
from pydantic_ai.messages import ModelMessage, ModelResponse, ToolCallPart
from sqlalchemy import select

from signoff.app import create_app
from signoff.config import Settings
from signoff.db import Database
from signoff.models import Run, RunStatus, RunStep
from signoff.queue.jobs import StepJob
from signoff.queue.procrastinate_queue import (
    CLEANUP_TASK,
    EXECUTE_TASK,
    SWEEP_TASK,
    ProcrastinateQueue,
)
from signoff.runs import conversation
from tests.support.accounts import BROWSER, signup
from tests.support.engine import active_workflow_run
from tests.support.mailbox import links_in, mail_to, text_of
from tests.support.postgres import fresh_postgres_database, libpq
from tests.support.processes import (
    Process,
    QueuedStep,
    emails_sent_once,
    job_status,
    processes,
    step_jobs,
    wait_for_workers,
    worker_ids,
)
from tests.support.settings import make_settings
from tests.support.smtp import FakeSmtpServer, running_smtp_server
from tests.support.waiting import wait_until
from tests.support.workflows import SEED_GOAL, create_workflow, wait_for_run

# The workers are other processes: room for a busy machine, and a gentler poll of the database.
PATIENCE: dict[str, Any] = {"timeout": 20.0, "interval": 0.05}


@dataclass
class Cluster:
    database_url: str
    smtp: FakeSmtpServer
    workers: tuple[Process, ...]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    workdir = tmp_path_factory.mktemp("procrastinate")
    with (
        fresh_postgres_database("procrastinate") as url,
        running_smtp_server() as smtp,
        processes(workdir) as started,
    ):
        settings = {
            "database_url": url,
            "queue": "procrastinate",
            "data_dir": workdir / "data",
            "smtp_url": smtp.url,
            "sweep_interval_seconds": 1,
            "offline_delay_seconds": 0.2,  # two deliveries of one job overlap
            "worker_concurrency": 4,
        }
        workers = tuple(started.start("worker", f"worker-{n}", **settings) for n in (1, 2))
        wait_for_workers(url, 2, workers)
        yield Cluster(url, smtp, workers)


@pytest.fixture
def api_settings(cluster: Cluster, tmp_path: Path) -> Settings:
    return make_settings(
        tmp_path,
        cluster.database_url,
        queue="procrastinate",
        smtp_url=cluster.smtp.url,
        mail_poll_seconds=0.2,
    )


@pytest.fixture
async def api(api_settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    application = create_app(api_settings)
    async with LifespanManager(application):
        assert isinstance(application.state.queue, ProcrastinateQueue)
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client


@pytest.fixture
async def db(cluster: Cluster) -> AsyncIterator[Database]:
    db = Database.from_url(cluster.database_url)
    try:
        yield db
    finally:
        await db.dispose()


@pytest.fixture
async def queue(cluster: Cluster) -> AsyncIterator[ProcrastinateQueue]:
    """This process's handle on the job queue, to defer jobs as a buggy deliverer would."""
    deferrer = ProcrastinateQueue(cluster.database_url, sweep_interval=1)
    await deferrer.open()
    try:
        yield deferrer
    finally:
        await deferrer.close()


async def stored(db: Database, run_id: int) -> tuple[Run, list[RunStep], list[ModelMessage]]:
    async with db.read() as session:
        run = await session.get(Run, run_id)
        assert run is not None
        steps = list(
            await session.scalars(
                select(RunStep).where(RunStep.run_id == run_id).order_by(RunStep.step_index)
            )
        )
        messages = await conversation.load(session, run.conversation_id)
    return run, steps, messages


def tool_calls(messages: list[ModelMessage]) -> list[str]:
    return [
        part.tool_name
        for message in messages
        if isinstance(message, ModelResponse)
        for part in message.parts
        if isinstance(part, ToolCallPart)
    ]


async def run_status(db: Database, run_id: int, status: RunStatus) -> Run | None:
    run, _, _ = await stored(db, run_id)
    if run.status in (RunStatus.COMPLETED, RunStatus.FAILED) and run.status != status:
        pytest.fail(f"run {run_id} ended {run.status}: {run.failure_reason}")
    return run if run.status == status else None


async def defer(queue: ProcrastinateQueue, job: StepJob, *, locked: bool) -> int | None:
    """Defer ``job`` again: with its queueing lock (as the engine does), or without any."""
    options: dict[str, Any] = {"queueing_lock": job.key} if locked else {}
    try:
        job_id: int = await queue.app.configure_task(EXECUTE_TASK, **options).defer_async(
            run_id=job.run_id, step_index=job.step_index, attempt=job.attempt
        )
    except AlreadyEnqueued:
        return None  # the same attempt is already waiting: the lock did its job
    return job_id


async def all_succeeded(url: str, job_ids: list[int], cluster: Cluster) -> None:
    async def finished() -> bool:
        statuses = [await job_status(url, job_id) for job_id in job_ids]
        assert "failed" not in statuses, statuses
        return all(status == "succeeded" for status in statuses)

    await wait_until(
        finished, "the deferred jobs to be executed", watch=cluster.workers, **PATIENCE
    )


async def finished_jobs(cluster: Cluster, run_id: int) -> list[QueuedStep]:
    """The run's step jobs once none is waiting or running. (A duplicate that the sweep
    deferred while a step's job was starting may still be on its way: it does nothing, but
    let it finish.)"""

    async def finished() -> list[QueuedStep] | None:
        jobs = await step_jobs(cluster.database_url, run_id)
        return jobs if all(job.status not in ("todo", "doing") for job in jobs) else None

    return await wait_until(finished, "the run's jobs to finish", watch=cluster.workers, **PATIENCE)


def periodic_ticks(queue: ProcrastinateQueue, task_name: str, count: int = 30) -> list[float]:
    """When ``task_name`` is deferred, from a moment that is not on a round minute."""
    [periodic] = [
        task
        for task in queue.app.periodic_registry.periodic_tasks.values()
        if task.task.name == task_name
    ]
    start = datetime(2026, 3, 2, 9, 1, 7, tzinfo=UTC).timestamp()
    ticks = [start]
    for _ in range(count):
        ticks.append(periodic.croniter.get_next(ret_type=float, start_time=ticks[-1]))
    return ticks


@pytest.mark.parametrize(("interval", "every"), [(0.5, 1), (1, 1), (5, 5), (10, 10), (120, 120)])
def test_the_sweep_is_scheduled_every_interval(interval: float, every: int) -> None:
    queue = ProcrastinateQueue("postgresql://nobody@127.0.0.1/none", sweep_interval=interval)
    ticks = periodic_ticks(queue, SWEEP_TASK)
    assert ticks[1] - ticks[0] <= every
    assert {round(b - a) for a, b in itertools.pairwise(ticks[1:])} == {every}


@pytest.mark.processes
async def test_seed_flow_with_worker_processes(
    api: httpx.AsyncClient, cluster: Cluster, db: Database
) -> None:
    smtp = cluster.smtp
    owner = await signup(api)
    created = await create_workflow(api, owner, SEED_GOAL)
    workflow_id = created["workflowId"]
    tools = [step["toolName"] for step in created["steps"]]
    assert tools == ["web_search", "generate_outline", "format_post"]

    # Approve the plan from the email: run 1 starts; its jobs go to the worker processes.
    plan_mail = await mail_to(smtp, owner.email, "Approve your workflow plan", timeout=15)
    [approve_plan] = [link for link in links_in(plan_mail) if "/approve?" in link]
    assert (await api.post(approve_plan)).status_code == 303
    [run] = (await api.get(f"/api/workflows/{workflow_id}", headers=owner.headers)).json()[
        "workflowRuns"
    ]
    run_id = run["id"]

    paused = await wait_for_run(api, owner, workflow_id, run_id, "awaiting_approval", timeout=20)
    first_post = paused["steps"][2]["output"]
    assert [step["status"] for step in paused["steps"]] == [
        "completed",
        "completed",
        "awaiting_approval",
    ]
    step_mail = await mail_to(smtp, owner.email, "Approval needed (step 3, attempt 1)", timeout=15)
    assert first_post.splitlines()[0] in text_of(step_mail)
    [reject] = [link for link in links_in(step_mail) if "action=reject" in link]

    # Reject with a note: a worker runs the step again as attempt 2, with the feedback.
    rejected = await api.post(
        reject,
        data={"note": "Make it shorter and mention our webinar"},
        headers={"User-Agent": BROWSER},
    )
    assert rejected.status_code == 303
    revised = await wait_for_run(api, owner, workflow_id, run_id, "awaiting_approval", timeout=20)
    assert revised["steps"][2]["attempt"] == 2
    assert "webinar" in revised["steps"][2]["output"].lower()
    second_mail = await mail_to(
        smtp, owner.email, "Approval needed (step 3, attempt 2)", timeout=15
    )
    [approve] = [link for link in links_in(second_mail) if "action=approve" in link]
    assert (await api.post(approve)).status_code == 303
    done = await wait_for_run(api, owner, workflow_id, run_id, "completed", timeout=20)

    assets = (
        await api.get(
            "/api/assets", params={"runId": run_id, "type": "social_post"}, headers=owner.headers
        )
    ).json()
    final = [asset["content"] for asset in assets if asset["status"] == "final"]
    assert final == [revised["steps"][2]["output"]]
    texts = [message.get("text") or "" for message in done["messages"]]
    assert "Rejected. Feedback: Make it shorter and mention our webinar. Please revise." in texts
    assert "Approved. Please continue." in texts
    calls = [m["toolName"] for m in done["messages"] if m["kind"] == "tool_call"]
    assert calls == ["web_search", "generate_outline", "format_post", "format_post"]

    # The work that started idle was a job executed by one of the two worker processes: the
    # run's first step and the attempt after the reject. Steps 2 and 3 (attempt 1) were
    # chained by the worker that recorded the step before them: no queue round trip.
    jobs = await finished_jobs(cluster, run_id)
    workers = await worker_ids(cluster.database_url)
    assert len(workers) == len(cluster.workers) == 2
    assert {(job.step_index, job.attempt) for job in jobs} == {(0, 1), (2, 2)}
    assert all(job.status == "succeeded" and job.worker_id in workers for job in jobs), jobs

    # One email per event, each delivered once: plan, two step approvals, completion.
    kinds = await emails_sent_once(cluster.database_url, smtp, owner.email)
    assert kinds["plan_approval"] == 1
    assert kinds["step_approval"] == 2
    assert kinds["run_completed"] == 1
    assert kinds["run_failed"] == 0


@pytest.mark.processes
async def test_a_job_delivered_twice_does_nothing_the_second_time(
    cluster: Cluster, db: Database, queue: ProcrastinateQueue, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path, cluster.database_url)
    _, run_id, job = await active_workflow_run(
        db, settings, tools=("web_search", "generate_outline")
    )
    # The first step's job, delivered four times at once (three without the queueing lock):
    # the workers execute them concurrently; one claims the step, the others do nothing.
    job_ids = await asyncio.gather(
        defer(queue, job, locked=True), *(defer(queue, job, locked=False) for _ in range(3))
    )
    await wait_until(
        lambda: run_status(db, run_id, RunStatus.COMPLETED),
        "the run to complete",
        watch=cluster.workers,
        **PATIENCE,
    )
    await all_succeeded(cluster.database_url, [i for i in job_ids if i is not None], cluster)
    run, steps, messages = await stored(db, run_id)
    assert tool_calls(messages) == ["web_search", "generate_outline"]
    assert run.model_requests == 2
    assert [(step.attempt, step.takeovers) for step in steps] == [(1, 0), (1, 0)]

    # Delivered again after the run ended, with and without the lock: nothing changes.
    again = [
        await defer(queue, StepJob(run_id, index, 1), locked=locked)
        for index in (0, 1)
        for locked in (True, False)
    ]
    assert None not in again
    await all_succeeded(cluster.database_url, [i for i in again if i is not None], cluster)
    after_run, after_steps, after_messages = await stored(db, run_id)
    assert len(after_messages) == len(messages)
    assert after_run.model_requests == run.model_requests
    assert after_run.input_tokens == run.input_tokens
    assert [(s.finished_at, s.output) for s in after_steps] == [
        (s.finished_at, s.output) for s in steps
    ]


@pytest.mark.processes
async def test_the_sweep_defers_what_was_committed_but_never_deferred(
    cluster: Cluster, db: Database, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path, cluster.database_url)
    # Started through the service layer and committed, but never deferred: as if the process
    # died between the commit and the defer.
    _, run_id, _ = await active_workflow_run(db, settings, tools=("web_search",))
    assert await step_jobs(cluster.database_url, run_id) == []
    await wait_until(
        lambda: run_status(db, run_id, RunStatus.COMPLETED),
        "the sweep to defer the step and a worker to run it",
        timeout=15,
        interval=0.05,
        watch=cluster.workers,
    )
    # Deferred by the sweep (with the step attempt's lock; more than once if a tick came
    # between a worker fetching the job and claiming the step) and run by a worker.
    jobs = await finished_jobs(cluster, run_id)
    workers = await worker_ids(cluster.database_url)
    assert jobs
    assert all(job.queueing_lock == f"step-{run_id}-0-1" for job in jobs), jobs
    assert all(job.status == "succeeded" and job.worker_id in workers for job in jobs), jobs


@pytest.mark.processes
async def test_the_sweep_retries_a_job_stalled_on_a_dead_worker(
    cluster: Cluster, queue: ProcrastinateQueue
) -> None:
    # A job left "doing" by a worker that is gone (its row pruned: worker_id is NULL). It names
    # no work, so executing it does nothing; what matters is that it is executed again.
    job_id = await queue.app.configure_task(EXECUTE_TASK, schedule_in={"hours": 1}).defer_async(
        run_id=2**31 - 1, step_index=0, attempt=1
    )
    async with await psycopg.AsyncConnection.connect(
        libpq(cluster.database_url), autocommit=True
    ) as conn:
        await conn.execute(
            "UPDATE procrastinate_jobs SET status = 'doing' WHERE id = %s", (job_id,)
        )
    await all_succeeded(cluster.database_url, [job_id], cluster)


@pytest.mark.processes
async def test_old_succeeded_jobs_are_removed_hourly(
    cluster: Cluster, queue: ProcrastinateQueue
) -> None:
    ticks = periodic_ticks(queue, CLEANUP_TASK, count=5)
    assert {round(b - a) for a, b in itertools.pairwise(ticks[1:])} == {3600}
    done = await defer(queue, StepJob(2**31 - 2, 0, 1), locked=False)  # names no work
    waiting = await queue.app.configure_task(EXECUTE_TASK, schedule_in={"hours": 1}).defer_async(
        run_id=2**31 - 2, step_index=0, attempt=2
    )
    assert done is not None
    await all_succeeded(cluster.database_url, [done], cluster)
    await queue.remove_old_jobs(hours=1)
    assert await job_status(cluster.database_url, done) == "succeeded"  # not old enough yet
    await queue.remove_old_jobs(hours=0)
    assert await job_status(cluster.database_url, done) is None
    assert await job_status(cluster.database_url, waiting) == "todo"
