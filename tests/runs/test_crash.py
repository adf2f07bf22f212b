"""kill -9 of the process executing a step, on both backends (ENGINE.md invariants 3, 4, 7).

The offline model takes a second per call, so a step is in flight long enough to be killed in;
leases are two seconds and the sweep frequent, so the takeover comes quickly. After the crash:
the interrupted step completes exactly once, earlier steps are not re-run, the run finishes,
and every email was delivered once.

- inline: ``signoff serve`` on a SQLite file is killed and started again on the same file;
- procrastinate: the ``signoff worker`` executing the step is killed and a second worker (up
  and idle, paused so that the first one takes every step) takes over.

On procrastinate, the surviving worker is then stopped with SIGTERM: it exits 0 and
unregisters (a graceful stop, unlike the kill).

(A job delivered twice on the inline backend: tests/runs/test_engine.py; on procrastinate:
tests/queue/test_procrastinate.py.)
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import select

from signoff.app import create_app
from signoff.db import Database
from signoff.models import RunStep
from signoff.queue.procrastinate_queue import ProcrastinateQueue
from tests.support.accounts import Account, signup
from tests.support.postgres import fresh_postgres_database
from tests.support.processes import (
    Process,
    emails_sent_once,
    outbox_of,
    processes,
    step_jobs,
    wait_for_workers,
    worker_ids,
)
from tests.support.settings import make_settings
from tests.support.smtp import FakeSmtpServer
from tests.support.waiting import wait_until
from tests.support.workflows import SEED_GOAL, activate, create_workflow, wait_for_run

pytestmark = pytest.mark.processes
CRASH_SETTINGS: dict[str, Any] = {
    "offline_delay_seconds": 1.0,  # each model call: a step is in flight for a second
    "step_lease_seconds": 2,
    "sweep_interval_seconds": 0.5,  # procrastinate's periodic sweep rounds it to 1 s
}
INTERRUPTED = 1  # generate_outline: after web_search, before format_post (approval)

Crash = Callable[[int], Awaitable[httpx.AsyncClient]]


async def run_through_a_crash(
    client: httpx.AsyncClient,
    crash: Crash,
    *,
    database_url: str,
    smtp: FakeSmtpServer,
    watch: tuple[Process, ...] = (),
) -> int:
    """Start a run, call ``crash(run_id)`` while step 2 executes (it returns the client to use
    from then on), see the run through, check what the crash must not change; returns the
    run id."""
    owner = await signup(client)
    created = await create_workflow(client, owner, SEED_GOAL)
    workflow_id = created["workflowId"]
    assert [s["toolName"] for s in created["steps"]] == [
        "web_search",
        "generate_outline",
        "format_post",
    ]
    # Emails so far are delivered before anything crashes: a crash between an SMTP delivery and
    # its record may resend that one email (with the same Message-ID), which is not the point.
    await all_delivered(database_url, owner)
    run_id = await activate(client, owner, workflow_id)
    path = f"/api/workflows/{workflow_id}/runs/{run_id}"

    async def interrupted_step_running() -> dict[str, Any] | None:
        run: dict[str, Any] = (await client.get(path, headers=owner.headers)).json()
        return run if run["steps"][INTERRUPTED]["status"] == "running" else None

    before = await wait_until(
        interrupted_step_running, "step 2 to be executing", timeout=30, interval=0.03, watch=watch
    )
    assert before["steps"][0]["status"] == "completed"

    client = await crash(run_id)

    paused = await wait_for_run(client, owner, workflow_id, run_id, "awaiting_approval", timeout=30)
    assert paused["currentStepIndex"] == 2
    decided = await client.post(
        f"{path}/decision", json={"action": "approve"}, headers=owner.headers
    )
    assert decided.status_code == 200, decided.text
    done = await wait_for_run(client, owner, workflow_id, run_id, "completed", timeout=15)

    # The interrupted step completed once, in its first attempt; the earlier step was not re-run.
    assert [step["status"] for step in done["steps"]] == ["completed"] * 3
    assert [step["attempt"] for step in done["steps"]] == [1, 1, 1]
    assert done["steps"][0]["finishedAt"] == before["steps"][0]["finishedAt"]
    assert done["steps"][0]["output"] == before["steps"][0]["output"]
    calls = [m["toolName"] for m in done["messages"] if m["kind"] == "tool_call"]
    assert calls == ["web_search", "generate_outline", "format_post"]
    assert done["modelRequests"] == 3
    # The crash hit the step while it executed: it was taken over (not merely queued again).
    db = Database.from_url(database_url)
    try:
        async with db.read() as session:
            takeovers = list(
                await session.scalars(
                    select(RunStep.takeovers)
                    .where(RunStep.run_id == run_id)
                    .order_by(RunStep.step_index)
                )
            )
    finally:
        await db.dispose()
    assert takeovers[0] == 0
    assert takeovers[INTERRUPTED] >= 1

    kinds = await emails_sent_once(database_url, smtp, owner.email)
    assert kinds["plan_approval"] == 1
    assert kinds["step_approval"] == 1
    assert kinds["run_completed"] == 1
    assert kinds["run_failed"] == 0
    return run_id


async def all_delivered(database_url: str, owner: Account) -> None:
    async def delivered() -> bool:
        rows = await outbox_of(database_url, owner.email)
        return bool(rows) and all(row.status == "sent" for row in rows)

    await wait_until(delivered, "the emails so far to be delivered", timeout=15)


async def test_kill_9_of_signoff_serve_inline_on_sqlite(
    tmp_path: Path, smtp_server: FakeSmtpServer
) -> None:
    database_url = f"sqlite+aiosqlite:///{tmp_path}/signoff.db"
    settings = {
        **CRASH_SETTINGS,
        "database_url": database_url,
        "data_dir": tmp_path / "data",
        "smtp_url": smtp_server.url,
    }
    with processes(tmp_path) as started:
        first, base = started.serve("serve-1", **settings)
        port = int(base.rsplit(":", 1)[1])
        restarted: list[Process] = []

        async def crash(run_id: int) -> httpx.AsyncClient:
            first.kill()
            second, _ = started.serve("serve-2", port=port, **settings)
            restarted.append(second)
            return after_restart

        async with (
            httpx.AsyncClient(base_url=base, timeout=10) as before_restart,
            httpx.AsyncClient(base_url=base, timeout=10) as after_restart,
        ):
            await run_through_a_crash(
                before_restart,
                crash,
                database_url=database_url,
                smtp=smtp_server,
                watch=(first,),
            )
        assert restarted[0].alive()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    with fresh_postgres_database("crash") as url:
        yield url


async def test_kill_9_of_a_signoff_worker_on_procrastinate(
    tmp_path: Path, smtp_server: FakeSmtpServer, postgres_url: str
) -> None:
    settings = {
        **CRASH_SETTINGS,
        "database_url": postgres_url,
        "queue": "procrastinate",
        "data_dir": tmp_path / "data",
        "smtp_url": smtp_server.url,
    }
    api_settings = make_settings(
        tmp_path,
        postgres_url,
        queue="procrastinate",
        smtp_url=smtp_server.url,
        mail_poll_seconds=0.2,
    )
    with processes(tmp_path) as started:
        doomed = started.start("worker", "worker-1", **settings)
        standby = started.start("worker", "worker-2", **settings)
        wait_for_workers(postgres_url, 2, (doomed, standby))
        standby.pause()  # up, but it takes no job until the first worker is gone

        killed: set[int | None] = set()

        async def crash(run_id: int) -> httpx.AsyncClient:
            jobs = await step_jobs(postgres_url, run_id)
            # The interrupted step is chained: its worker runs it inside the job of the step
            # before (no job of its own until the sweep re-queues it after the lease).
            killed.update(j.worker_id for j in jobs if j.status == "doing")
            doomed.kill()
            standby.resume()
            return client

        application = create_app(api_settings)
        async with LifespanManager(application):
            assert isinstance(application.state.queue, ProcrastinateQueue)  # defers, runs none
            transport = httpx.ASGITransport(app=application)
            async with httpx.AsyncClient(
                transport=transport, base_url="http://testserver"
            ) as client:
                run_id = await run_through_a_crash(
                    client,
                    crash,
                    database_url=postgres_url,
                    smtp=smtp_server,
                    watch=(doomed,),
                )
        # The step's job was running in the killed worker; another job for the same attempt,
        # deferred by the sweep once the lease ran out, was executed by the second worker. (The
        # killed worker may also have run a duplicate that found the step claimed: a no-op.)
        jobs = [
            job for job in await step_jobs(postgres_url, run_id) if job.step_index == INTERRUPTED
        ]
        succeeded = [job for job in jobs if job.status == "succeeded"]
        assert len(killed) == 1, jobs
        assert succeeded, jobs
        assert any(job.worker_id not in killed for job in succeeded), jobs

        # SIGTERM (what systemd, Docker, Kubernetes send) stops a worker gracefully: it exits 0
        # and unregisters, instead of dying like the kill -9 above.
        registered = await worker_ids(postgres_url)
        standby.popen.terminate()
        assert await asyncio.to_thread(standby.popen.wait, 30) == 0, standby.output()[-3000:]
        assert len(await worker_ids(postgres_url)) == len(registered) - 1
