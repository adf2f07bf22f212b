"""Queries for runs, their steps, and assets."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from signoff.models import (
    ACTIVE_RUN_STATUSES,
    Asset,
    AssetStatus,
    LinkDecision,
    Run,
    RunStatus,
    RunStep,
    RunTrigger,
    StepStatus,
    Workflow,
)
from signoff.queue.jobs import StepJob


async def lock_run(session: AsyncSession, run_id: int) -> Run | None:
    """The run, locked for this transaction (PostgreSQL row lock; SQLite's writer lock is
    already held since the transaction began with BEGIN IMMEDIATE)."""
    return await session.scalar(
        select(Run)
        .where(Run.id == run_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )


async def lock_run_at_step(
    session: AsyncSession, run_id: int, step_index: int
) -> tuple[Run, RunStep] | None:
    """The run, locked as by :func:`lock_run`, with its step ``step_index``, in one statement
    (the engine's claim and record). Every state change locks the run first, so that lock
    serialises them; the step is locked too because a statement that waited for a lock re-reads
    only the rows it locks (PostgreSQL's READ COMMITTED): without it, the step would be read as
    it was before the holder of the run's lock changed it."""
    row = (
        await session.execute(
            select(Run, RunStep)
            .join(RunStep, RunStep.run_id == Run.id)
            .where(Run.id == run_id, RunStep.step_index == step_index)
            .with_for_update(of=(Run, RunStep))
            .execution_options(populate_existing=True)
        )
    ).first()
    return None if row is None else (row[0], row[1])


async def lock_run_with_steps(
    session: AsyncSession, run_id: int, step_index: int
) -> tuple[Run, RunStep, RunStep | None] | None:
    """The run, locked as by :func:`lock_run`, with its step ``step_index`` and the one after
    it (None after the last), in one statement, all locked as by :func:`lock_run_at_step`: the
    engine records a step and claims the next in the same transaction."""
    rows = (
        await session.execute(
            select(Run, RunStep)
            .join(RunStep, RunStep.run_id == Run.id)
            .where(Run.id == run_id, RunStep.step_index.in_((step_index, step_index + 1)))
            .order_by(RunStep.step_index)
            .with_for_update(of=(Run, RunStep))
            .execution_options(populate_existing=True)
        )
    ).all()
    if not rows or rows[0][1].step_index != step_index:
        return None
    return rows[0][0], rows[0][1], rows[1][1] if len(rows) > 1 else None


async def get_run_in_teams(
    session: AsyncSession, workflow_id: str, run_id: int, team_ids: Sequence[str]
) -> Run | None:
    """The run if it belongs to that workflow and to one of ``team_ids``."""
    return await session.scalar(
        select(Run).where(
            Run.id == run_id, Run.workflow_id == workflow_id, Run.team_id.in_(team_ids)
        )
    )


async def get_step(session: AsyncSession, run_id: int, step_index: int) -> RunStep | None:
    return await session.scalar(
        select(RunStep)
        .where(RunStep.run_id == run_id, RunStep.step_index == step_index)
        .execution_options(populate_existing=True)
    )


async def list_steps(session: AsyncSession, run_id: int) -> Sequence[RunStep]:
    result = await session.scalars(
        select(RunStep).where(RunStep.run_id == run_id).order_by(RunStep.step_index)
    )
    return result.all()


async def active_run(session: AsyncSession, workflow_id: str) -> Run | None:
    return await session.scalar(
        select(Run).where(Run.workflow_id == workflow_id, Run.status.in_(ACTIVE_RUN_STATUSES))
    )


async def list_runs(
    session: AsyncSession, workflow_id: str, *, limit: int | None, before_number: int | None = None
) -> Sequence[Run]:
    query = select(Run).where(Run.workflow_id == workflow_id)
    if before_number is not None:
        query = query.where(Run.run_number < before_number)
    query = query.order_by(Run.run_number.desc())
    if limit is not None:
        query = query.limit(limit)
    return (await session.scalars(query)).all()


async def ready_jobs(session: AsyncSession, now: datetime, *, limit: int = 500) -> list[StepJob]:
    """Work that is ready but perhaps not queued: the current step of an active run that is
    pending and due, or running under a lease that ran out (its worker crashed)."""
    rows = await session.execute(
        select(RunStep.run_id, RunStep.step_index, RunStep.attempt)
        .join(Run, Run.id == RunStep.run_id)
        .where(
            Run.status.in_((RunStatus.RUNNING, RunStatus.APPROVED)),
            RunStep.step_index == Run.current_step_index,
            or_(
                and_(
                    RunStep.status == StepStatus.PENDING,
                    or_(RunStep.next_attempt_at.is_(None), RunStep.next_attempt_at <= now),
                ),
                and_(RunStep.status == StepStatus.RUNNING, RunStep.claimed_until < now),
            ),
        )
        .order_by(RunStep.run_id)
        .limit(limit)
    )
    return [StepJob(run_id, step_index, attempt) for run_id, step_index, attempt in rows.all()]


async def pending_asset(
    session: AsyncSession, run_id: int, step_index: int, attempt: int
) -> Asset | None:
    return await session.scalar(
        select(Asset).where(
            Asset.run_id == run_id,
            Asset.step_index == step_index,
            Asset.attempt == attempt,
            Asset.status == AssetStatus.PENDING,
        )
    )


async def list_assets(
    session: AsyncSession,
    team_ids: Sequence[str],
    *,
    run_id: int | None,
    asset_type: str | None,
    limit: int,
    offset: int,
) -> Sequence[Asset]:
    query = select(Asset).where(Asset.team_id.in_(team_ids))
    if run_id is not None:
        query = query.where(Asset.run_id == run_id)
    if asset_type is not None:
        query = query.where(Asset.type == asset_type)
    query = query.order_by(Asset.created_at.desc(), Asset.id).limit(limit).offset(offset)
    return (await session.scalars(query)).all()


async def decision_exists(session: AsyncSession, subject: str) -> bool:
    found = await session.scalar(select(LinkDecision.id).where(LinkDecision.subject == subject))
    return found is not None


async def asset_blob(session: AsyncSession, asset_id: str) -> bytes | None:
    """An asset's bytes, loaded on their own (the column is deferred: lists never load them)."""
    blob: bytes | None = await session.scalar(select(Asset.blob).where(Asset.id == asset_id))
    return blob


@dataclass(frozen=True)
class RunFilters:
    """What the team's runs list (GET /api/runs, /dashboard/runs) is narrowed to."""

    status: RunStatus | None = None
    workflow_id: str | None = None
    trigger: RunTrigger | None = None
    started_from: datetime | None = None  # inclusive
    started_before: datetime | None = None  # exclusive
    search: str | None = None  # in the workflow's title or goal, case-insensitive


async def list_team_runs(
    session: AsyncSession,
    team_id: str,
    filters: RunFilters,
    *,
    limit: int,
    after: tuple[datetime, int] | None = None,
) -> list[tuple[Run, str]]:
    """A page of the team's runs across workflows, newest first (started, then id), each with
    its workflow's title, in one statement. ``after`` is the (started_at, id) of the previous
    page's last run: the page goes on strictly after it (keyset paging over
    ``ix_runs_team_started``)."""
    query = (
        select(Run, Workflow.title)
        .join(Workflow, Workflow.id == Run.workflow_id)
        .where(Run.team_id == team_id)
    )
    if filters.status is not None:
        query = query.where(Run.status == filters.status)
    if filters.workflow_id is not None:
        query = query.where(Run.workflow_id == filters.workflow_id)
    if filters.trigger is not None:
        query = query.where(Run.trigger == filters.trigger)
    if filters.started_from is not None:
        query = query.where(Run.started_at >= filters.started_from)
    if filters.started_before is not None:
        query = query.where(Run.started_at < filters.started_before)
    if filters.search:
        query = query.where(
            or_(
                Workflow.title.icontains(filters.search, autoescape=True),
                Workflow.goal.icontains(filters.search, autoescape=True),
            )
        )
    if after is not None:
        started, run_id = after
        query = query.where(
            or_(Run.started_at < started, and_(Run.started_at == started, Run.id < run_id))
        )
    query = query.order_by(Run.started_at.desc(), Run.id.desc()).limit(limit)
    return [(run, title) for run, title in (await session.execute(query)).all()]


async def team_workflow_titles(session: AsyncSession, team_id: str) -> list[tuple[str, str]]:
    """(id, title) of the team's workflows, by title: the runs list's workflow filter."""
    rows = await session.execute(
        select(Workflow.id, Workflow.title)
        .where(Workflow.team_id == team_id)
        .order_by(Workflow.title, Workflow.id)
    )
    return [(workflow_id, title) for workflow_id, title in rows.all()]
