"""Queries for workflows and their steps. Tenant queries always filter by team."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Row, Select, and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload, selectinload

from signoff.models import MemoryEntry, Run, RunStep, Team, Workflow, WorkflowStep
from signoff.models.memory import CORE_KEY


async def get_in_teams(
    session: AsyncSession, workflow_id: str, team_ids: Sequence[str]
) -> Workflow | None:
    """The workflow with its steps if it belongs to one of ``team_ids``."""
    return await _one_with_steps(
        session, select(Workflow).where(Workflow.id == workflow_id, Workflow.team_id.in_(team_ids))
    )


async def get_with_steps(
    session: AsyncSession, workflow_id: str, *, fresh: bool = False
) -> Workflow | None:
    """By id alone: for email links, whose token (not a session) is the authority.

    ``fresh`` reloads an object the session already holds (after a bulk UPDATE).
    """
    query = select(Workflow).where(Workflow.id == workflow_id)
    if fresh:
        query = query.execution_options(populate_existing=True)
    return await _one_with_steps(session, query)


async def lock(session: AsyncSession, workflow_id: str) -> None:
    """Lock the workflow's row and refresh the session's object from it (PostgreSQL; SQLite's
    writes are serial): a change that then checks its status or revision sees what an
    approval, a run start or another change committed meanwhile, and one still in progress
    finishes first. ``FOR NO KEY UPDATE``: inserts that reference the workflow (its runs, its
    steps) take key share locks, which this must not wait for or deadlock with."""
    await session.execute(
        select(Workflow)
        .where(Workflow.id == workflow_id)
        .with_for_update(key_share=True)
        .options(selectinload(Workflow.steps))  # refreshed too (a second, unlocked SELECT)
        .execution_options(populate_existing=True)
    )


async def _one_with_steps(session: AsyncSession, query: Select[Workflow]) -> Workflow | None:
    """One workflow and its steps in one statement (a join: every workflow endpoint loads them)."""
    result = await session.execute(query.options(joinedload(Workflow.steps)))
    return result.unique().scalar_one_or_none()


def _step_count() -> ColumnElement[int]:
    return (
        select(func.count())
        .where(WorkflowStep.workflow_id == Workflow.id)
        .correlate(Workflow)
        .scalar_subquery()
    )


async def list_page(
    session: AsyncSession,
    team_id: str,
    columns: Sequence[ColumnElement[Any]],
    *,
    limit: int | None,
    after: tuple[datetime, str] | None = None,
    before: tuple[datetime, str] | None = None,
) -> Sequence[Row[Any]]:
    """The team's workflows in one statement: ``columns`` of the workflow and of its latest
    run (null when it never ran), then its step count. The latest run is the one numbered
    ``run_count``, so the join uses the (workflow, run number) index.

    Newest first, those older than ``after``, a (created_at, id) position; or, with
    ``before``, oldest first from the one just newer than that position (a page backwards)."""
    query = (
        select(*columns, _step_count())
        .outerjoin(Run, and_(Run.workflow_id == Workflow.id, Run.run_number == Workflow.run_count))
        .where(Workflow.team_id == team_id)
    )
    if before is None:
        query = query.order_by(Workflow.created_at.desc(), Workflow.id.desc())
    else:
        query = query.order_by(Workflow.created_at, Workflow.id)
    if after is not None:
        query = query.where(
            or_(
                Workflow.created_at < after[0],
                and_(Workflow.created_at == after[0], Workflow.id < after[1]),
            )
        )
    if before is not None:
        query = query.where(
            or_(
                Workflow.created_at > before[0],
                and_(Workflow.created_at == before[0], Workflow.id > before[1]),
            )
        )
    if limit is not None:
        query = query.limit(limit)
    return (await session.execute(query)).all()


async def team_name_and_core_memory(session: AsyncSession, team_id: str) -> tuple[str, str | None]:
    team = await session.get(Team, team_id)
    core = await session.get(MemoryEntry, (team_id, CORE_KEY))
    return (team.name if team else ""), (core.value if core else None)


async def team_progress(session: AsyncSession, team_id: str) -> list[tuple[Any, ...]]:
    """For the dashboard's live list: each of the team's workflows with its status, plan
    revision and latest run (id, status, current step), in one query. The latest run is the
    one numbered ``run_count``, so the join uses the (workflow, run number) index."""
    rows = await session.execute(
        select(
            Workflow.id,
            Workflow.status,
            Workflow.plan_revision,
            Run.id,
            Run.status,
            Run.current_step_index,
        )
        .outerjoin(Run, and_(Run.workflow_id == Workflow.id, Run.run_number == Workflow.run_count))
        .where(Workflow.team_id == team_id)
        .order_by(Workflow.id)
    )
    return [tuple(row) for row in rows.all()]


async def workflow_progress(session: AsyncSession, workflow_id: str) -> list[tuple[Any, ...]]:
    """For the dashboard's live pages of one workflow: its status and plan revision, its
    latest run's status, and that run's steps (status, attempt, retries), in one query. Runs
    other than the latest have ended and no longer change."""
    rows = await session.execute(
        select(
            Workflow.status,
            Workflow.plan_revision,
            Run.id,
            Run.status,
            RunStep.step_index,
            RunStep.status,
            RunStep.attempt,
            RunStep.retries,
        )
        .outerjoin(Run, and_(Run.workflow_id == Workflow.id, Run.run_number == Workflow.run_count))
        .outerjoin(RunStep, RunStep.run_id == Run.id)
        .where(Workflow.id == workflow_id)
        .order_by(RunStep.step_index)
    )
    return [tuple(row) for row in rows.all()]
