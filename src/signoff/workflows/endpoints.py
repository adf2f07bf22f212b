"""The workflow endpoints: the seed API's routes plus schedule changes and a workflow's runs."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, status

from signoff.auth.dependencies import Auth
from signoff.dependencies import DB, Config
from signoff.errors import Unprocessable
from signoff.kit.schemas import EmailSentResponse
from signoff.models import Role, RunTrigger
from signoff.runs import repository as run_repository
from signoff.runs import service as run_service
from signoff.runs.schemas import RunPage, RunStarted, RunSummary
from signoff.workflows import service
from signoff.workflows.schemas import (
    CreateWorkflowRequest,
    CreateWorkflowResponse,
    EditStepsRequest,
    ScheduleChange,
    WorkflowDetail,
    WorkflowListItem,
)

router = APIRouter(prefix="/api/workflows", tags=["workflows"])

RUNS_PAGE_SIZE = 50


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_workflow(
    body: CreateWorkflowRequest, auth: Auth, db: DB, settings: Config, request: Request
) -> CreateWorkflowResponse:
    """Draft a plan for the goal with the LLM, save it as a draft, and email it for approval."""
    return await service.create(db, request.app.state.llm, settings, auth, body)


@router.get("")
async def list_workflows(auth: Auth, db: DB) -> list[WorkflowListItem]:
    """The current team's workflows, newest first."""
    async with db.read() as session:
        return await service.list_items(session, auth.current_team_id)


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
        return await service.load_detail(session, workflow, all_runs=runs == "all")


@router.patch("/{workflow_id}", tags=["scheduling"])
async def change_schedule(
    workflow_id: str, body: ScheduleChange, auth: Auth, db: DB
) -> WorkflowDetail:
    """Change or remove the schedule (and its timezone); an active workflow is re-armed."""
    async with db.write() as session:
        workflow = await service.get_visible(session, auth, workflow_id, Role.ADMIN)
        await service.change_schedule(session, workflow, body)
        return await service.load_detail(session, workflow)


@router.post("/{workflow_id}/steps")
async def edit_steps(
    workflow_id: str, body: EditStepsRequest, auth: Auth, db: DB, settings: Config
) -> WorkflowDetail:
    """Add or update a draft's steps (``merge``), or set the whole plan (``replace``)."""
    async with db.write() as session:
        workflow = await service.get_visible(session, auth, workflow_id, Role.ADMIN)
        await service.edit_steps(session, settings, workflow, body)
        return await service.load_detail(session, workflow)


@router.post("/{workflow_id}/activate")
async def activate_workflow(
    workflow_id: str, auth: Auth, db: DB, settings: Config
) -> WorkflowDetail:
    """Approve the plan from the dashboard: the same effect as the email link (the workflow
    becomes active and its first run starts)."""
    async with db.write() as session:
        workflow = await service.get_visible(session, auth, workflow_id, Role.ADMIN)
        activation = await service.approve_signed_in(session, settings, workflow, auth.user_id)
        return await service.load_detail(session, activation.workflow)


@router.post("/{workflow_id}/archive")
async def archive_workflow(workflow_id: str, auth: Auth, db: DB) -> WorkflowDetail:
    """Retire a workflow: no more runs, no schedule."""
    async with db.write() as session:
        workflow = await service.get_visible(session, auth, workflow_id, Role.ADMIN)
        await service.archive(session, workflow)
        return await service.load_detail(session, workflow)


@router.post("/{workflow_id}/approval-email")
async def resend_plan_email(
    workflow_id: str, auth: Auth, db: DB, settings: Config
) -> EmailSentResponse:
    """Send a fresh plan approval email (for a draft whose 24 h link expired)."""
    async with db.write() as session:
        workflow = await service.get_visible(session, auth, workflow_id)
        return await service.resend_plan_email(session, settings, workflow)


@router.post("/{workflow_id}/run", status_code=status.HTTP_201_CREATED, tags=["runs"])
async def start_run(workflow_id: str, auth: Auth, db: DB, settings: Config) -> RunStarted:
    """Run an active workflow now. 422 unless active; 409 while another run is active."""
    async with db.write() as session:
        workflow = await service.get_visible(session, auth, workflow_id)
        run, _ = await run_service.start_run(
            session, settings, workflow, trigger=RunTrigger.MANUAL, started_by=auth.user_id
        )
    return RunStarted(run_id=run.id, conversation_id=run.conversation_id)


@router.get("/{workflow_id}/runs", tags=["runs"])
async def list_runs(
    workflow_id: str,
    auth: Auth,
    db: DB,
    cursor: Annotated[str | None, Query(description="From the previous page.")] = None,
) -> RunPage:
    """All runs, newest first, 50 a page."""
    before: int | None = None
    if cursor is not None:
        if not cursor.isdigit():
            raise Unprocessable(
                "The cursor is not one this API gave out.",
                details=[{"field": "cursor", "message": "invalid cursor"}],
            )
        before = int(cursor)
    async with db.read() as session:
        workflow = await service.get_visible(session, auth, workflow_id)
        runs = await run_repository.list_runs(
            session, workflow.id, limit=RUNS_PAGE_SIZE + 1, before_number=before
        )
    page = list(runs[:RUNS_PAGE_SIZE])
    next_cursor = str(page[-1].run_number) if len(runs) > RUNS_PAGE_SIZE else None
    return RunPage(runs=[RunSummary.model_validate(run) for run in page], next_cursor=next_cursor)
