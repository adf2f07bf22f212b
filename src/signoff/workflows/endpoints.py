"""The workflow endpoints of the seed API (SPEC §3.2)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, status
from sqlalchemy.ext.asyncio import AsyncSession

from signoff.auth import repository as auth_repository
from signoff.auth.dependencies import Auth
from signoff.config import Settings, get_settings
from signoff.db import Database, get_db
from signoff.errors import Conflict
from signoff.mail.sender import wake_sender
from signoff.models import Role, Run, Workflow, WorkflowStatus
from signoff.planner.service import draft_plan
from signoff.queue.dependencies import get_queue
from signoff.queue.jobs import JobQueue
from signoff.runs import repository as run_repository
from signoff.runs.schemas import RunSummary
from signoff.scheduling.cron import describe
from signoff.workflows import repository, service
from signoff.workflows.schemas import (
    CreateWorkflowRequest,
    CreateWorkflowResponse,
    EditStepsRequest,
    EmailSentResponse,
    StepOut,
    WorkflowDetail,
    WorkflowListItem,
    WorkflowOut,
)

router = APIRouter(prefix="/api/workflows", tags=["workflows"])

DB = Annotated[Database, Depends(get_db)]
Config = Annotated[Settings, Depends(get_settings)]
Queue = Annotated[JobQueue, Depends(get_queue)]

RUNS_IN_DETAIL = 50


def workflow_fields(workflow: Workflow) -> dict[str, object]:
    return WorkflowOut(
        id=workflow.id,
        title=workflow.title,
        goal=workflow.goal,
        status=workflow.status,
        schedule=workflow.schedule,
        schedule_description=describe(workflow.schedule) if workflow.schedule else None,
        timezone=workflow.timezone,
        next_run_at=workflow.next_run_at,
        plan_revision=workflow.plan_revision,
        planned_by=workflow.planned_by,
        created_at=workflow.created_at,
        updated_at=workflow.updated_at,
        activated_at=workflow.activated_at,
    ).model_dump()


def steps_out(workflow: Workflow) -> list[StepOut]:
    return [StepOut.model_validate(step) for step in workflow.steps]


def detail_out(workflow: Workflow, runs: Sequence[Run]) -> WorkflowDetail:
    return WorkflowDetail(
        **workflow_fields(workflow),
        workflow_steps=steps_out(workflow),
        workflow_runs=[RunSummary.model_validate(run) for run in runs],
    )


async def load_detail(
    session: AsyncSession, workflow: Workflow, *, all_runs: bool = False
) -> WorkflowDetail:
    runs = await run_repository.list_runs(
        session, workflow.id, limit=None if all_runs else RUNS_IN_DETAIL
    )
    return detail_out(workflow, runs)


def _emailed_message(emailed: list[str], unverified: Sequence[str] = ()) -> str:
    """Who got the approval email and, in production, which owners did not and why."""
    held_back = (
        f" Not emailed: {', '.join(unverified)}, because "
        f"{'that address is' if len(unverified) == 1 else 'those addresses are'} not verified "
        "yet (workflow emails go only to verified addresses; open the verification email "
        "sent at signup, or ask for a new one)."
        if unverified
        else ""
    )
    if not emailed:
        return (
            "No owner of this team could be emailed; approve the plan from the dashboard."
            + held_back
        )
    return f"Check your email: the approval link went to {', '.join(emailed)}.{held_back}"


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_workflow(
    body: CreateWorkflowRequest, auth: Auth, db: DB, settings: Config, request: Request
) -> CreateWorkflowResponse:
    """Draft a plan for the goal with the LLM, save it as a draft, and email it for approval."""
    async with db.read() as session:
        team_name, core_memory = await repository.team_name_and_core_memory(
            session, auth.current_team_id
        )
    # No transaction is open during the model call.
    plan = await draft_plan(
        request.app.state.llm,
        goal=body.goal,
        team_name=team_name,
        core_memory=core_memory,
        settings=settings,
    )
    async with db.write() as session:
        workflow, emailed = await service.save_draft(
            session,
            settings,
            auth=auth,
            goal=body.goal,
            schedule=body.schedule,
            timezone=body.timezone,
            plan=plan,
        )
        unverified = await auth_repository.unverified_owners(session, settings, workflow.team_id)
    wake_sender(request.app)
    return CreateWorkflowResponse(
        workflow_id=workflow.id,
        title=workflow.title,
        steps=steps_out(workflow),
        message=f"Plan drafted by {plan.model_name}. {_emailed_message(emailed, unverified)}",
        planned_by=plan.model_name,
        emailed_to=emailed,
    )


@router.get("")
async def list_workflows(auth: Auth, db: DB) -> list[WorkflowListItem]:
    """The current team's workflows, newest first."""
    async with db.read() as session:
        rows = await repository.list_for_team(session, auth.current_team_id)
        latest = await run_repository.latest_runs(session, [workflow.id for workflow, _ in rows])
    return [
        WorkflowListItem(
            **workflow_fields(workflow),
            step_count=count,
            latest_run=RunSummary.model_validate(latest[workflow.id])
            if workflow.id in latest
            else None,
        )
        for workflow, count in rows
    ]


@router.get("/{workflow_id}")
async def get_workflow(
    workflow_id: str,
    auth: Auth,
    db: DB,
    runs: Annotated[
        Literal["latest", "all"],
        Query(description="`all` lists every run; by default the latest 50."),
    ] = "latest",
) -> WorkflowDetail:
    """One workflow with its steps (by stepIndex) and its runs (newest first)."""
    async with db.read() as session:
        workflow = await service.get_visible(session, auth, workflow_id)
        return await load_detail(session, workflow, all_runs=runs == "all")


@router.post("/{workflow_id}/steps")
async def edit_steps(
    workflow_id: str,
    body: EditStepsRequest,
    auth: Auth,
    db: DB,
    settings: Config,
    request: Request,
) -> WorkflowDetail:
    """Add or update a draft's steps (``merge``), or set the whole plan (``replace``)."""
    async with db.write() as session:
        workflow = await service.get_visible(session, auth, workflow_id, Role.ADMIN)
        await service.edit_steps(session, settings, workflow, body)
        detail = await load_detail(session, workflow)
    wake_sender(request.app)
    return detail


@router.post("/{workflow_id}/activate")
async def activate_workflow(
    workflow_id: str, auth: Auth, db: DB, settings: Config, queue: Queue
) -> WorkflowDetail:
    """Approve the plan from the dashboard: the same effect as the email link (the workflow
    becomes active and its first run starts)."""
    async with db.write() as session:
        workflow = await service.get_visible(session, auth, workflow_id, Role.ADMIN)
        activation = await service.activate(
            session,
            settings,
            workflow.id,
            revision=workflow.plan_revision,
            decided_by=auth.user_id,
            via="dashboard",
        )
        detail = await load_detail(session, activation.workflow)
    await queue.enqueue(activation.job)
    return detail


@router.post("/{workflow_id}/archive")
async def archive_workflow(workflow_id: str, auth: Auth, db: DB) -> WorkflowDetail:
    """Retire a workflow: no more runs, no schedule."""
    async with db.write() as session:
        workflow = await service.get_visible(session, auth, workflow_id, Role.ADMIN)
        await service.archive(session, workflow)
        return await load_detail(session, workflow)


@router.post("/{workflow_id}/approval-email")
async def resend_plan_email(
    workflow_id: str, auth: Auth, db: DB, settings: Config, request: Request
) -> EmailSentResponse:
    """Send a fresh plan approval email (for a draft whose 24 h link expired)."""
    async with db.write() as session:
        workflow = await service.get_visible(session, auth, workflow_id)
        if workflow.status != WorkflowStatus.DRAFT:
            raise Conflict(
                f"Only a draft waits for plan approval; this workflow is {workflow.status}.",
                code="not_draft",
            )
        emailed = await service.send_plan_email(session, settings, workflow)
        unverified = await auth_repository.unverified_owners(session, settings, workflow.team_id)
    wake_sender(request.app)
    return EmailSentResponse(message=_emailed_message(emailed, unverified), emailed_to=emailed)
