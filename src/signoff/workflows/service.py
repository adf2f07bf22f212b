"""Workflow rules: saving drafted plans, editing drafts, activation, archiving, plan emails.

Services never commit; endpoints own the transaction. The planner (an LLM call) runs between
transactions, never inside one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from signoff.approvals.tokens import PLAN_LINK_TTL, issue_plan_token
from signoff.auth import repository as auth_repository
from signoff.auth.service import AuthContext
from signoff.config import Settings
from signoff.errors import Conflict, NotFound, Unprocessable
from signoff.kit.clock import utc_now
from signoff.mail import service as mail
from signoff.models import (
    LinkDecision,
    Role,
    Run,
    RunTrigger,
    Workflow,
    WorkflowStatus,
    WorkflowStep,
)
from signoff.planner.schemas import PlannedStep
from signoff.planner.service import DraftedPlan
from signoff.queue.jobs import StepJob
from signoff.runs import repository as run_repository
from signoff.runs import service as run_service
from signoff.scheduling.cron import describe
from signoff.scheduling.service import arm
from signoff.tools.registry import TOOLS
from signoff.workflows import repository
from signoff.workflows.rules import plan_problems, repair_steps, step_fields
from signoff.workflows.schemas import EditStepsRequest, StepIn


async def get_visible(
    session: AsyncSession, auth: AuthContext, workflow_id: str, minimum: Role = Role.MEMBER
) -> Workflow:
    """A workflow of any of the user's teams, with the role check; another team's is a 404."""
    workflow = await repository.get_in_teams(session, workflow_id, auth.team_ids)
    if workflow is None:
        raise NotFound("No workflow with this id.", code="workflow_not_found")
    auth.require_role(workflow.team_id, minimum)
    return workflow


async def save_draft(
    session: AsyncSession,
    settings: Settings,
    *,
    auth: AuthContext,
    goal: str,
    schedule: str | None,
    timezone: str,
    plan: DraftedPlan,
) -> tuple[Workflow, list[str]]:
    """Save a drafted plan as a draft workflow and email the plan to the team's owners."""
    workflow = Workflow(
        team_id=auth.current_team_id,
        created_by=auth.user_id,
        title=plan.title,
        goal=goal,
        schedule=schedule,
        timezone=timezone,
        planned_by=plan.model_name,
        status=WorkflowStatus.DRAFT,
        plan_revision=1,
    )
    workflow.steps = [WorkflowStep(**step_fields(step)) for step in plan.steps]
    session.add(workflow)
    await session.flush()
    emailed = await send_plan_email(session, settings, workflow)
    return workflow, emailed


async def send_plan_email(
    session: AsyncSession, settings: Settings, workflow: Workflow
) -> list[str]:
    """Email the plan with an "Approve & Activate" link to every owner of the team."""
    owners = await auth_repository.owner_recipients(session, settings, workflow.team_id)
    token = issue_plan_token(settings, workflow_id=workflow.id, revision=workflow.plan_revision)
    base = settings.public_base_url
    context: dict[str, Any] = {
        "workflow": workflow,
        "steps": workflow.steps,
        "tools": TOOLS,
        "schedule_description": describe(workflow.schedule) if workflow.schedule else None,
        "approve_url": f"{base}/api/workflows/{workflow.id}/approve?token={token}",
        "dashboard_url": f"{base}/dashboard/workflows/{workflow.id}",
        "expires_hours": int(PLAN_LINK_TTL.total_seconds() // 3600),
    }
    recipients = []
    for owner, _role in owners:
        await mail.enqueue(
            session,
            settings,
            kind="plan_approval",
            to=owner.email,
            subject=f"Approve your workflow plan: {workflow.title}",
            template="plan_approval",
            context={**context, "recipient_name": owner.name},
            team_id=workflow.team_id,
        )
        recipients.append(owner.email)
    return recipients


def _planned(step: StepIn | WorkflowStep, index: int) -> PlannedStep:
    return PlannedStep(
        step_index=index,
        description=step.description,
        tool_name=step.tool_name,
        tool_input=step.tool_input,
        requires_approval=step.requires_approval,
        approval_prompt=step.approval_prompt,
    )


def _merge(current: Sequence[WorkflowStep], request: EditStepsRequest) -> list[PlannedStep]:
    """``replace`` sets the plan; ``merge`` replaces steps named by stepIndex, appends others."""
    if request.mode == "replace":
        return [_planned(step, index) for index, step in enumerate(request.steps)]
    merged = [_planned(step, step.step_index) for step in current]
    for step in request.steps:
        if step.step_index is None:
            merged.append(_planned(step, len(merged)))
        elif step.step_index < len(merged):
            merged[step.step_index] = _planned(step, step.step_index)
        else:
            raise Unprocessable(
                f"There is no step {step.step_index} to update (the plan has {len(merged)} "
                "steps); leave stepIndex out to add a step.",
                details=[{"field": "steps.stepIndex", "message": "no such step"}],
            )
    return merged


async def edit_steps(
    session: AsyncSession, settings: Settings, workflow: Workflow, request: EditStepsRequest
) -> list[str]:
    """Change a draft's plan; the revision goes up, old links die, a fresh email goes out."""
    if workflow.status != WorkflowStatus.DRAFT:
        raise Conflict(
            f"Only a draft's plan can be edited; this workflow is {workflow.status}.",
            code="not_draft",
        )
    steps = repair_steps(_merge(workflow.steps, request))
    problems = plan_problems(steps)
    if problems:
        raise Unprocessable(
            "The plan breaks a rule: " + " ".join(problems),
            code="invalid_plan",
            details=[{"field": "steps", "message": problem} for problem in problems],
        )
    workflow.steps.clear()
    await session.flush()  # delete the old rows before inserting new ones with the same keys
    workflow.steps.extend(WorkflowStep(**step_fields(step)) for step in steps)
    workflow.plan_revision += 1
    workflow.updated_at = utc_now()
    await session.flush()
    return await send_plan_email(session, settings, workflow)


@dataclass(frozen=True)
class Activation:
    workflow: Workflow
    run: Run
    job: StepJob


async def activate(
    session: AsyncSession,
    settings: Settings,
    workflow_id: str,
    *,
    revision: int,
    decided_by: str | None,
    via: str,
    token_id: str | None = None,
) -> Activation:
    """Approve plan ``revision``: draft → active, and start the first run (as the original
    product does). Exactly one of concurrent approvals wins.

    The conditional UPDATE is the decision: it matches only a draft at that revision, so a
    second click, a second tab or a dashboard approval racing an email link all find nothing
    to update and are told why.
    """
    now = utc_now()
    result = await session.execute(
        update(Workflow)
        .where(
            Workflow.id == workflow_id,
            Workflow.status == WorkflowStatus.DRAFT,
            Workflow.plan_revision == revision,
        )
        .values(status=WorkflowStatus.ACTIVE, activated_at=now, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    workflow = await repository.get_with_steps(session, workflow_id, fresh=True)
    if workflow is None:
        raise NotFound("No workflow with this id.", code="workflow_not_found")
    if result.rowcount != 1:  # type: ignore[attr-defined]
        check_plan_decidable(workflow, revision)
        raise Conflict("This plan was already approved.", code="already_decided")
    session.add(
        LinkDecision(
            team_id=workflow.team_id,
            workflow_id=workflow.id,
            subject=f"plan:{workflow.id}:{revision}",
            kind="plan_approval",
            action="approve",
            token_id=token_id,
            decided_by=decided_by,
            via=via,
        )
    )
    await session.flush()
    arm(workflow, now)
    run, job = await run_service.start_run(
        session, settings, workflow, trigger=RunTrigger.APPROVAL, started_by=decided_by
    )
    return Activation(workflow=workflow, run=run, job=job)


def check_plan_decidable(workflow: Workflow, revision: int) -> None:
    """Raise the reason why plan ``revision`` can no longer be approved, if there is one."""
    if workflow.status == WorkflowStatus.ARCHIVED:
        raise Conflict("This workflow was archived; there is nothing to approve.", code="archived")
    if workflow.plan_revision != revision:
        raise Conflict(
            "The plan changed after this link was sent; use the link in the newest email.",
            code="plan_changed",
        )
    if workflow.status != WorkflowStatus.DRAFT:
        raise Conflict("This plan was already approved.", code="already_decided")


async def archive(session: AsyncSession, workflow: Workflow) -> None:
    if workflow.status == WorkflowStatus.ARCHIVED:
        raise Conflict("This workflow is already archived.", code="already_archived")
    if await run_repository.active_run(session, workflow.id) is not None:
        raise Conflict(
            "A run of this workflow is active; stop it or let it finish before archiving.",
            code="run_active",
        )
    now = utc_now()
    workflow.status = WorkflowStatus.ARCHIVED
    workflow.archived_at = now
    workflow.updated_at = now
    arm(workflow)  # disarmed: an archived workflow has no next fire
    await session.flush()
