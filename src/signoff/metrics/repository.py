"""The database side of a scrape: a few aggregate queries, each served by an index or a scan of
a table that grows one row per run, email or schedule fire (docs/architecture.md, Metrics)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from signoff.models import (
    FireOutcome,
    MailStatus,
    OutboxMail,
    Run,
    RunStatus,
    RunStep,
    RunTrigger,
    ScheduleFire,
    StepStatus,
)


@dataclass
class Snapshot:
    """What the database says at one moment; every label value is present, at zero if need be."""

    runs_started: dict[str, int] = field(default_factory=dict)  # by trigger
    runs_completed: dict[str, int] = field(default_factory=dict)
    runs_failed: dict[str, int] = field(default_factory=dict)
    steps_awaiting_approval: int = 0
    steps_ready: int = 0
    steps_ready_oldest_seconds: float = 0.0
    outbox_backlog: int = 0
    mail_failures: int = 0
    mail_given_up: int = 0
    schedule_fires: dict[str, int] = field(default_factory=dict)  # started / skipped
    schedule_misses: int = 0


async def snapshot(session: AsyncSession, now: datetime) -> Snapshot:
    result = Snapshot()
    for counts in (result.runs_started, result.runs_completed, result.runs_failed):
        counts.update(dict.fromkeys(RunTrigger, 0))
    runs = await session.execute(
        select(Run.trigger, Run.status, func.count()).group_by(Run.trigger, Run.status)
    )
    for trigger, status, count in runs.all():
        result.runs_started[trigger] += count
        if status == RunStatus.COMPLETED:
            result.runs_completed[trigger] += count
        elif status == RunStatus.FAILED:
            result.runs_failed[trigger] += count

    # ix_run_steps_ready (status, next_attempt_at) serves both step queries.
    result.steps_awaiting_approval = (
        await session.scalar(
            select(func.count())
            .select_from(RunStep)
            .where(RunStep.status == StepStatus.AWAITING_APPROVAL)
        )
        or 0
    )
    # Ready and not claimed: a pending current step of an active run whose time has come (the
    # sweep's definition, less the expired leases). It has waited since its retry time, or
    # since its run last moved (started, or decided).
    ready_since = func.coalesce(RunStep.next_attempt_at, Run.updated_at)
    ready = await session.execute(
        select(func.count(), func.min(ready_since))
        .select_from(RunStep)
        .join(Run, Run.id == RunStep.run_id)
        .where(
            RunStep.status == StepStatus.PENDING,
            or_(RunStep.next_attempt_at.is_(None), RunStep.next_attempt_at <= now),
            Run.status.in_((RunStatus.RUNNING, RunStatus.APPROVED)),
            RunStep.step_index == Run.current_step_index,
        )
    )
    count, oldest = ready.one()
    result.steps_ready = count or 0
    if oldest is not None:
        if isinstance(oldest, str):  # SQLite returns an expression's datetime as text
            oldest = datetime.fromisoformat(oldest)
        if oldest.tzinfo is None:
            oldest = oldest.replace(tzinfo=now.tzinfo)
        result.steps_ready_oldest_seconds = max((now - oldest).total_seconds(), 0.0)

    # Every delivery attempt but the one that succeeded failed: a row's failures are its
    # attempts, less one if it went out.
    mail = await session.execute(
        select(
            OutboxMail.status, func.count(), func.coalesce(func.sum(OutboxMail.attempts), 0)
        ).group_by(OutboxMail.status)
    )
    for mail_status, count, attempts in mail.all():
        delivered_rows = count if mail_status in (MailStatus.SENT, MailStatus.KEPT) else 0
        result.mail_failures += int(attempts) - delivered_rows
        if mail_status == MailStatus.PENDING:
            result.outbox_backlog = count
        elif mail_status == MailStatus.FAILED:
            result.mail_given_up = count

    result.schedule_fires = {FireOutcome.STARTED: 0, FireOutcome.SKIPPED: 0}
    fires = await session.execute(
        select(ScheduleFire.outcome, func.count()).group_by(ScheduleFire.outcome)
    )
    for outcome, count in fires.all():
        if outcome == FireOutcome.MISSED:
            result.schedule_misses = count
        else:
            result.schedule_fires[outcome] = count
    return result
