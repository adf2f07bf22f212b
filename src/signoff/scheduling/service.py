"""Firing schedules exactly once, however many schedulers run (arming is ``workflows.service.arm``).

A workflow's ``next_run_at`` is its armed schedule. A scheduler claims a due workflow with one
conditional UPDATE that moves ``next_run_at`` on from the exact value it read: of several
schedulers (processes, machines), exactly one wins each due time. The winner logs every due
time it handles and starts runs exactly as a manual run would.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from signoff.config import Settings
from signoff.db import Database
from signoff.errors import Conflict
from signoff.kit.clock import utc_now
from signoff.kit.cron import next_fire
from signoff.kit.logging import log_context
from signoff.models import (
    FireOutcome,
    RunTrigger,
    ScheduleFire,
    Workflow,
    WorkflowStatus,
)
from signoff.queue.jobs import StepJob
from signoff.runs import service as run_service
from signoff.workflows import repository as workflow_repository

logger = logging.getLogger(__name__)

MAX_FIRES_PER_CLAIM = 1000  # a very long downtime logs at most this many missed times


async def fire_log(session: AsyncSession, workflow_id: str, limit: int) -> list[ScheduleFire]:
    """The workflow's fires, newest first."""
    fires = await session.scalars(
        select(ScheduleFire)
        .where(ScheduleFire.workflow_id == workflow_id)
        .order_by(ScheduleFire.due_at.desc(), ScheduleFire.id.desc())
        .limit(limit)
    )
    return list(fires)


@dataclass(frozen=True)
class FireResult:
    workflow_id: str
    fires: list[ScheduleFire]
    job: StepJob | None


async def due_workflow_ids(session: AsyncSession, now: datetime, limit: int = 100) -> list[str]:
    rows = await session.scalars(
        select(Workflow.id)
        .where(
            Workflow.status == WorkflowStatus.ACTIVE,
            Workflow.next_run_at.is_not(None),
            Workflow.next_run_at <= now,
        )
        .order_by(Workflow.next_run_at)
        .limit(limit)
    )
    return list(rows)


async def fire_workflow(
    session: AsyncSession, settings: Settings, workflow_id: str, now: datetime
) -> FireResult | None:
    """Claim and handle every due time of one workflow; None if another scheduler has it."""
    workflow = await session.get(Workflow, workflow_id, populate_existing=True)
    if (
        workflow is None
        or workflow.status != WorkflowStatus.ACTIVE
        or workflow.schedule is None
        or workflow.next_run_at is None
        or workflow.next_run_at > now
    ):
        return None
    due: list[datetime] = []
    moment = workflow.next_run_at
    while moment <= now and len(due) < MAX_FIRES_PER_CLAIM:
        due.append(moment)
        moment = next_fire(workflow.schedule, workflow.timezone, moment)
    while moment <= now:  # past the cap: skip ahead without logging
        moment = next_fire(workflow.schedule, workflow.timezone, moment)
    claimed = await session.execute(
        update(Workflow)
        .where(Workflow.id == workflow.id, Workflow.next_run_at == workflow.next_run_at)
        .values(next_run_at=moment)
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        return None  # another scheduler claimed these due times first
    grace = timedelta(seconds=settings.schedule_grace_seconds)
    on_time = [t for t in due if now - t <= grace]
    missed = [t for t in due if now - t > grace]
    fires = [
        ScheduleFire(
            workflow_id=workflow.id,
            team_id=workflow.team_id,
            due_at=t,
            handled_at=now,
            outcome=FireOutcome.MISSED,
        )
        for t in missed
    ]
    job: StepJob | None = None
    if on_time or missed:
        # After downtime, one catch-up run stands in for every missed time.
        catch_up = not on_time
        due_at = on_time[-1] if on_time else missed[-1]
        fire = ScheduleFire(
            workflow_id=workflow.id,
            team_id=workflow.team_id,
            due_at=due_at,
            handled_at=now,
            outcome=FireOutcome.STARTED,
            catch_up=catch_up,
        )
        workflow_with_steps = await workflow_repository.get_with_steps(session, workflow.id)
        assert workflow_with_steps is not None
        try:
            async with session.begin_nested():
                run, job = await run_service.start_run(
                    session,
                    settings,
                    workflow_with_steps,
                    trigger=RunTrigger.SCHEDULE,
                    started_by=None,
                )
            fire.run_id = run.id
        except Conflict:
            # A run is still active: the fire is recorded as skipped, not queued. (Rolling the
            # savepoint back expired the loaded objects: only plain values are used below.)
            fire.outcome = FireOutcome.SKIPPED
            job = None
        fires.append(fire)
    session.add_all(fires)
    await session.flush()
    return FireResult(workflow_id=workflow_id, fires=fires, job=job)


async def tick(db: Database, settings: Settings) -> list[FireResult]:
    """Handle every workflow that is due now, each in its own short transaction."""
    now = utc_now()
    async with db.read() as session:
        workflow_ids = await due_workflow_ids(session, now)
    results = []
    for workflow_id in workflow_ids:
        with log_context(workflow=workflow_id):
            try:
                async with db.write() as session:
                    result = await fire_workflow(session, settings, workflow_id, now)
            except Exception:  # one workflow's failure must not stop the others
                logger.exception("scheduling workflow %s failed", workflow_id)
                continue
            if result is not None:
                results.append(result)
                for fire in result.fires:
                    logger.info(
                        "schedule fire due %s: %s%s",
                        fire.due_at.isoformat(),
                        fire.outcome,
                        f" (run id {fire.run_id})" if fire.run_id else "",
                    )
    return results
