"""The approvals inbox: every decision waiting for the caller in the current team — draft plans
and paused steps, across workflows, oldest first (``GET /api/approvals``, ``/dashboard/inbox``,
the navigation's count).

Only owners and admins decide (the plan link, the step links and the decision route check the
same role), so a member's inbox is empty.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, and_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from signoff.auth.service import AuthContext
from signoff.models import Role, Run, RunStatus, RunStep, StepStatus, Workflow, WorkflowStatus
from signoff.runs.schemas import RunStepOut
from signoff.runs.service import EDITABLE_TOOLS
from signoff.workflows.schemas import ApprovalItem, ApprovalList, StepOut


def _decides(auth: AuthContext) -> bool:
    role = auth.role_in(auth.current_team_id)
    return role is not None and role.at_least(Role.ADMIN)


def _waiting_steps(team_id: str) -> Select[Run, RunStep, str]:
    """Runs of the team paused at a step, with that step (the run's current one)."""
    return (
        select(Run, RunStep, Workflow.title)
        .join(
            RunStep,
            and_(RunStep.run_id == Run.id, RunStep.step_index == Run.current_step_index),
        )
        .join(Workflow, Workflow.id == Run.workflow_id)
        .where(
            Run.team_id == team_id,
            Run.status == RunStatus.AWAITING_APPROVAL,
            RunStep.status == StepStatus.AWAITING_APPROVAL,
        )
    )


async def progress(session: AsyncSession, auth: AuthContext) -> list[tuple[Any, ...]]:
    """What waits for the caller, as keys (plan: workflow and revision; step: run, step and
    attempt): live pages follow it, so the navigation's count and the inbox change when it
    does. Two small queries on indexed columns."""
    if not _decides(auth):
        return []
    team_id = auth.current_team_id
    plans = await session.execute(
        select(Workflow.id, Workflow.plan_revision).where(
            Workflow.team_id == team_id, Workflow.status == WorkflowStatus.DRAFT
        )
    )
    steps = await session.execute(
        select(Run.id, RunStep.step_index, RunStep.attempt)
        .join(
            RunStep,
            and_(RunStep.run_id == Run.id, RunStep.step_index == Run.current_step_index),
        )
        .where(
            Run.team_id == team_id,
            Run.status == RunStatus.AWAITING_APPROVAL,
            RunStep.status == StepStatus.AWAITING_APPROVAL,
        )
    )
    keys = [("plan", *row) for row in plans.all()] + [("step", *row) for row in steps.all()]
    return sorted(keys, key=repr)


async def count(session: AsyncSession, auth: AuthContext) -> int:
    """How many decisions wait for the caller (the navigation's count)."""
    return len(await progress(session, auth))


async def items(session: AsyncSession, auth: AuthContext) -> ApprovalList:
    """Every decision waiting for the caller in the current team, oldest first."""
    if not _decides(auth):
        return ApprovalList(count=0, items=[])
    team_id = auth.current_team_id
    found: list[ApprovalItem] = []
    drafts = await session.scalars(
        select(Workflow)
        .options(selectinload(Workflow.steps))
        .where(Workflow.team_id == team_id, Workflow.status == WorkflowStatus.DRAFT)
    )
    for workflow in drafts:
        found.append(
            ApprovalItem(
                kind="plan",
                workflow_id=workflow.id,
                workflow_title=workflow.title,
                waiting_since=workflow.updated_at,
                url=f"/dashboard/workflows/{workflow.id}",
                plan_revision=workflow.plan_revision,
                plan_steps=[StepOut.model_validate(step) for step in workflow.steps],
                run_id=None,
                run_number=None,
                step_count=None,
                step=None,
                editable=False,
            )
        )
    for run, step, title in (await session.execute(_waiting_steps(team_id))).all():
        found.append(
            ApprovalItem(
                kind="step",
                workflow_id=run.workflow_id,
                workflow_title=title,
                # The run's last change is its pause at this step.
                waiting_since=run.updated_at,
                url=f"/dashboard/workflows/{run.workflow_id}/runs/{run.id}",
                plan_revision=None,
                plan_steps=None,
                run_id=run.id,
                run_number=run.run_number,
                step_count=run.step_count,
                step=RunStepOut.model_validate(step),
                editable=step.tool_name in EDITABLE_TOOLS,
            )
        )
    found.sort(key=lambda item: (item.waiting_since, item.workflow_id, item.run_id or 0))
    return ApprovalList(count=len(found), items=found)
