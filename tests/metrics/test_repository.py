"""The database side of ``/metrics``: the queue's lag, the outbox, schedule fires, run counts,
read from the rows every process writes (so right for any number of processes and machines)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update

from signoff.config import Settings
from signoff.db import Database
from signoff.kit.clock import FrozenClock, utc_now
from signoff.mail.sender import MailSender
from signoff.metrics.repository import Snapshot, snapshot
from signoff.models import (
    FireOutcome,
    Run,
    RunStatus,
    RunStep,
    RunTrigger,
    ScheduleFire,
    Workflow,
)
from tests.support.engine import active_workflow_run
from tests.support.outbox import write_notice
from tests.support.ports import free_port

pytestmark = pytest.mark.postgres


async def _snapshot(database: Database) -> Snapshot:
    async with database.read() as session:
        return await snapshot(session, utc_now())


async def test_a_step_nobody_claimed_is_queue_lag(
    database: Database, settings: Settings, clock: FrozenClock
) -> None:
    empty = await _snapshot(database)
    assert (empty.steps_ready, empty.steps_ready_oldest_seconds) == (0, 0.0)

    # Started, its first job never taken (no worker runs here).
    await active_workflow_run(database, settings)
    clock.advance(timedelta(seconds=30))
    await active_workflow_run(database, settings)
    clock.advance(timedelta(seconds=12))

    lagging = await _snapshot(database)
    assert lagging.steps_ready == 2
    assert lagging.steps_ready_oldest_seconds == pytest.approx(42)
    assert lagging.runs_started[RunTrigger.MANUAL] == 2
    assert lagging.runs_completed[RunTrigger.MANUAL] == 0


async def test_a_retry_counts_from_its_time_and_not_before(
    database: Database, settings: Settings, clock: FrozenClock
) -> None:
    _, run_id, _ = await active_workflow_run(database, settings)
    async with database.write() as session:
        await session.execute(
            update(RunStep)
            .where(RunStep.run_id == run_id, RunStep.step_index == 0)
            .values(next_attempt_at=utc_now() + timedelta(seconds=10))
        )
    assert (await _snapshot(database)).steps_ready == 0  # backing off: not lag
    clock.advance(timedelta(seconds=15))
    waiting = await _snapshot(database)
    assert (waiting.steps_ready, waiting.steps_ready_oldest_seconds) == (1, pytest.approx(5))


async def test_finished_runs_count_by_trigger(
    database: Database, settings: Settings, clock: FrozenClock
) -> None:
    _, completed, _ = await active_workflow_run(database, settings)
    _, failed, _ = await active_workflow_run(database, settings)
    async with database.write() as session:
        for run_id, status in ((completed, RunStatus.COMPLETED), (failed, RunStatus.FAILED)):
            await session.execute(update(Run).where(Run.id == run_id).values(status=status))
    counts = await _snapshot(database)
    assert counts.runs_started == {"manual": 2, "schedule": 0, "approval": 0}
    assert counts.runs_completed == {"manual": 1, "schedule": 0, "approval": 0}
    assert counts.runs_failed == {"manual": 1, "schedule": 0, "approval": 0}


async def test_outbox_backlog_and_failed_attempts(
    database: Database, settings: Settings, clock: FrozenClock
) -> None:
    dead = settings.model_copy(
        update={"smtp_url": f"smtp://127.0.0.1:{free_port()}", "mail_max_attempts": 2}
    )
    for _ in range(3):
        await write_notice(database, dead)
    assert (await _snapshot(database)).outbox_backlog == 3

    await MailSender(database, dead).deliver_due()  # every attempt fails
    first = await _snapshot(database)
    assert (first.outbox_backlog, first.mail_failures, first.mail_given_up) == (3, 3, 0)

    clock.advance(timedelta(hours=2))
    await MailSender(database, dead).deliver_due()  # the last attempt: given up
    second = await _snapshot(database)
    assert (second.outbox_backlog, second.mail_failures, second.mail_given_up) == (0, 6, 3)

    # A mail that goes out after failures: its failed attempts count, its delivery does not.
    await write_notice(database, dead)
    await MailSender(database, dead).deliver_due()
    clock.advance(timedelta(hours=2))
    await MailSender(database, settings).deliver_due()  # no SMTP: kept for the dev mailbox
    third = await _snapshot(database)
    assert (third.outbox_backlog, third.mail_failures) == (0, 7)


async def test_schedule_fires_and_misses(
    database: Database, settings: Settings, clock: FrozenClock
) -> None:
    workflow_id, _, _ = await active_workflow_run(database, settings)
    async with database.write() as session:
        workflow = await session.get(Workflow, workflow_id)
        assert workflow is not None
        outcomes = [FireOutcome.STARTED, FireOutcome.SKIPPED, *[FireOutcome.MISSED] * 2]
        session.add_all(
            ScheduleFire(
                workflow_id=workflow_id,
                team_id=workflow.team_id,
                due_at=utc_now() - timedelta(hours=n),
                outcome=outcome,
            )
            for n, outcome in enumerate(outcomes)
        )
    fires = await _snapshot(database)
    assert fires.schedule_fires == {"started": 1, "skipped": 1}
    assert fires.schedule_misses == 2
