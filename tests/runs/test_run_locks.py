"""Every state change of a run locks the run's row first, and reads the run's steps in the same
statement. On PostgreSQL (READ COMMITTED), a statement that waited for that lock re-reads only
the rows it locks: the steps must be locked too, or the waiter decides on the steps as they
were before the holder changed them (two workers both claiming one step, each asking the model).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, update

from signoff.config import Settings
from signoff.db import Database
from signoff.models import Run, RunStep, StepStatus
from signoff.queue.jobs import StepJob
from signoff.runs import repository, step_store
from tests.support.engine import active_workflow_run
from tests.support.postgres import start_until_it_waits

pytestmark = pytest.mark.postgres(only=True)  # SQLite has one writer: nothing waits mid-statement

OTHER_WORKER = "another-worker's-lease"


async def _claim(database: Database, job: StepJob) -> object:
    claimed = await step_store.claim_pending(database, job, timedelta(minutes=5))
    return claimed if claimed == "running" or claimed is None else "a lease of its own"


async def _claim_token_seen_by(
    read: Callable[[Any, int, int], Awaitable[Any]], database: Database, job: StepJob
) -> str | None:
    async with database.write() as session:
        found = await read(session, job.run_id, job.step_index)
        assert found is not None
        step: RunStep = found[1]
        return step.claim_token


async def _while_another_worker_leases_the_step(
    database: Database, job: StepJob, waiter: Callable[[], Coroutine[Any, Any, object]]
) -> object:
    """Start ``waiter`` while another transaction holds the run's lock and leases the job's
    step; it commits once ``waiter`` waits for the lock. What ``waiter`` returned."""
    async with database.engine.connect() as holder, holder.begin():
        await holder.execute(select(Run.id).where(Run.id == job.run_id).with_for_update())
        await holder.execute(
            update(RunStep)
            .where(RunStep.run_id == job.run_id, RunStep.step_index == job.step_index)
            .values(status=StepStatus.RUNNING, claim_token=OTHER_WORKER, claimed_until=func.now())
        )
        waiting = await start_until_it_waits(database, waiter(), "the waiter")
    return await waiting


async def test_a_claim_that_waited_for_the_run_sees_the_step_leased(
    database: Database, settings: Settings
) -> None:
    _, _, job = await active_workflow_run(database, settings)
    claimed = await _while_another_worker_leases_the_step(
        database, job, lambda: _claim(database, job)
    )
    # Not a lease of its own on a step another worker holds: the general path decides.
    assert claimed == "running"


@pytest.mark.parametrize("read", [repository.lock_run_at_step, repository.lock_run_with_steps])
async def test_a_read_that_waited_for_the_run_sees_the_steps_as_the_holder_left_them(
    database: Database, settings: Settings, read: Callable[[Any, int, int], Awaitable[Any]]
) -> None:
    _, _, job = await active_workflow_run(database, settings)
    token = await _while_another_worker_leases_the_step(
        database, job, lambda: _claim_token_seen_by(read, database, job)
    )
    assert token == OTHER_WORKER
