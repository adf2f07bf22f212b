"""Queries for workflows and their steps. Tenant queries always filter by team."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from signoff.models import MemoryEntry, Team, Workflow, WorkflowStep
from signoff.models.memory import CORE_KEY


async def get_in_teams(
    session: AsyncSession, workflow_id: str, team_ids: Sequence[str]
) -> Workflow | None:
    """The workflow with its steps if it belongs to one of ``team_ids``."""
    return await session.scalar(
        select(Workflow)
        .where(Workflow.id == workflow_id, Workflow.team_id.in_(team_ids))
        .options(selectinload(Workflow.steps))
    )


async def get_with_steps(
    session: AsyncSession, workflow_id: str, *, fresh: bool = False
) -> Workflow | None:
    """By id alone: for email links, whose token (not a session) is the authority.

    ``fresh`` reloads an object the session already holds (after a bulk UPDATE).
    """
    query = select(Workflow).where(Workflow.id == workflow_id).options(selectinload(Workflow.steps))
    if fresh:
        query = query.execution_options(populate_existing=True)
    return await session.scalar(query)


async def list_for_team(session: AsyncSession, team_id: str) -> Sequence[tuple[Workflow, int]]:
    """The team's workflows, newest first, each with its step count (one query)."""
    step_count = (
        select(func.count())
        .where(WorkflowStep.workflow_id == Workflow.id)
        .correlate(Workflow)
        .scalar_subquery()
    )
    rows = await session.execute(
        select(Workflow, step_count)
        .where(Workflow.team_id == team_id)
        .order_by(Workflow.created_at.desc(), Workflow.id.desc())
    )
    return [(row[0], int(row[1])) for row in rows.all()]


async def team_name_and_core_memory(session: AsyncSession, team_id: str) -> tuple[str, str | None]:
    team = await session.get(Team, team_id)
    core = await session.get(MemoryEntry, (team_id, CORE_KEY))
    return (team.name if team else ""), (core.value if core else None)
