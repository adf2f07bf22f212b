"""The workflow endpoints: the seed API's routes plus schedule changes and a workflow's runs."""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response, status
from pydantic_core import to_json

from signoff.audit.dependencies import CurrentActor
from signoff.auth.dependencies import Auth, AuthRead
from signoff.budgets.service import BUDGET_429
from signoff.dependencies import DB, Config
from signoff.kit import cursor as paging
from signoff.kit.openapi import errors
from signoff.kit.schemas import EmailSentResponse
from signoff.kit.storable import MAX_DB_INT
from signoff.models import Role, RunTrigger
from signoff.runs import repository as run_repository
from signoff.runs import service as run_service
from signoff.runs.schemas import RunPage, RunStarted
from signoff.workflows import inbox, service
from signoff.workflows.schemas import (
    ApprovalList,
    CreateWorkflowRequest,
    CreateWorkflowResponse,
    EditStepsRequest,
    ScheduleChange,
    WorkflowDetail,
    WorkflowList,
)

# Each route names its one tag (the docs group operations by it; a generated client makes a
# module of each): workflow routes also start and list runs, and change schedules.
router = APIRouter(prefix="/api/workflows")
WORKFLOWS: list[str | Enum] = ["workflows"]
# GET /api/approvals: the inbox spans workflows, so it sits outside their prefix.
approvals_router = APIRouter()

RUNS_PAGE_SIZE = 50


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    tags=WORKFLOWS,
    operation_id="createWorkflow",
    summary="Create a workflow from a goal",
    responses=errors(502) | BUDGET_429,
)
async def create_workflow(
    body: CreateWorkflowRequest, auth: Auth, db: DB, settings: Config, request: Request
) -> CreateWorkflowResponse:
    """Draft a plan for the goal with the LLM, save it as a draft, and email it for approval.
    429 `budget_exceeded` when the team's plan drafts per hour or tokens per day are used up."""
    return await service.create(db, request.app.state.llm, settings, auth, body)


MAX_WORKFLOWS_PAGE = 1000


@router.get(
    "",
    tags=WORKFLOWS,
    operation_id="listWorkflows",
    response_model=WorkflowList,
    summary="List the team's workflows",
    responses={
        200: {
            "headers": {
                "Link": {
                    "description": 'With `limit`, when more workflows follow: `<url>; rel="next"`, '
                    "the next page's URL (relative).",
                    "schema": {"type": "string"},
                }
            }
        }
    },
)
async def list_workflows(
    auth: Auth,
    db: DB,
    settings: Config,
    limit: Annotated[
        int | None,
        Query(ge=1, le=MAX_WORKFLOWS_PAGE, description="At most this many; by default all."),
    ] = None,
    cursor: Annotated[
        str | None,
        Query(
            max_length=200,
            description="Start after the page this came from: the `cursor` of the `Link` "
            "header's next URL.",
        ),
    ] = None,
) -> Response:
    """The current team's workflows, newest first: all of them, or a page of ``limit``; the
    ``Link`` header then names the next page (none after the last)."""
    async with db.read() as session:
        page = await service.list_page(
            session, settings, auth.current_team_id, limit=limit, cursor=cursor
        )
    headers = {}
    if page.next_cursor is not None:
        headers["Link"] = f'</api/workflows?limit={limit}&cursor={page.next_cursor}>; rel="next"'
    # The rows are already the wire's dicts: serialised once, without a model in between.
    return Response(to_json(page.items), media_type="application/json", headers=headers)


@router.get(
    "/{workflow_id}",
    tags=WORKFLOWS,
    operation_id="getWorkflow",
    summary="Get a workflow with its steps and runs",
)
async def get_workflow(
    workflow_id: str,
    reading: AuthRead,
    settings: Config,
    runs: Annotated[
        Literal["latest", "all"],
        Query(description="`all` lists every run; by default the latest 50."),
    ] = "latest",
) -> WorkflowDetail:
    """One workflow with its steps (by stepIndex) and its runs (newest first)."""
    workflow = await service.get_visible(reading.session, reading.auth, workflow_id)
    return await service.load_detail(reading.session, settings, workflow, all_runs=runs == "all")


@router.patch(
    "/{workflow_id}",
    tags=["scheduling"],
    operation_id="changeSchedule",
    summary="Change a workflow's schedule",
    responses=errors(409),
)
async def change_schedule(
    workflow_id: str,
    body: ScheduleChange,
    auth: Auth,
    actor: CurrentActor,
    db: DB,
    settings: Config,
) -> WorkflowDetail:
    """Change or remove the schedule (and its timezone); an active workflow is re-armed."""
    async with db.write() as session:
        workflow = await service.get_visible(session, auth, workflow_id, Role.ADMIN)
        await service.change_schedule(session, workflow, body, actor)
        return await service.load_detail(session, settings, workflow)


@router.post(
    "/{workflow_id}/steps",
    tags=WORKFLOWS,
    operation_id="editSteps",
    summary="Add or update a draft's steps",
    responses=errors(409),
)
async def edit_steps(
    workflow_id: str,
    body: EditStepsRequest,
    auth: Auth,
    actor: CurrentActor,
    db: DB,
    settings: Config,
) -> WorkflowDetail:
    """Add or update a draft's steps (``merge``), or set the whole plan (``replace``)."""
    async with db.write() as session:
        workflow = await service.get_visible(session, auth, workflow_id, Role.ADMIN)
        await service.edit_steps(session, settings, workflow, body, actor)
        return await service.load_detail(session, settings, workflow)


@router.post(
    "/{workflow_id}/activate",
    tags=WORKFLOWS,
    operation_id="activateWorkflow",
    summary="Approve a draft's plan (from the dashboard)",
    responses=errors(409),
)
async def activate_workflow(
    workflow_id: str,
    auth: Auth,
    actor: CurrentActor,
    db: DB,
    settings: Config,
    revision: Annotated[
        int | None,
        Query(
            ge=1,
            le=MAX_DB_INT,
            description="The plan revision you reviewed (`planRevision`): 409 `plan_changed` "
            "if someone edited the plan since. Without it, the current plan is approved.",
        ),
    ] = None,
) -> WorkflowDetail:
    """Approve the plan from the dashboard: the same effect as the email link (the workflow
    becomes active and its first run starts)."""
    async with db.write() as session:
        workflow = await service.get_visible(session, auth, workflow_id, Role.ADMIN)
        activation = await service.approve_signed_in(session, settings, workflow, actor, revision)
        return await service.load_detail(session, settings, activation.workflow)


@router.post(
    "/{workflow_id}/archive",
    tags=WORKFLOWS,
    operation_id="archiveWorkflow",
    summary="Archive a workflow",
    responses=errors(409),
)
async def archive_workflow(
    workflow_id: str, auth: Auth, actor: CurrentActor, db: DB, settings: Config
) -> WorkflowDetail:
    """Retire a workflow: no more runs, no schedule."""
    async with db.write() as session:
        workflow = await service.get_visible(session, auth, workflow_id, Role.ADMIN)
        await service.archive(session, workflow, actor)
        return await service.load_detail(session, settings, workflow)


@router.post(
    "/{workflow_id}/approval-email",
    tags=WORKFLOWS,
    operation_id="resendPlanEmail",
    summary="Send a fresh plan approval email",
    responses=errors(409),
)
async def resend_plan_email(
    workflow_id: str, auth: Auth, db: DB, settings: Config
) -> EmailSentResponse:
    """Send a fresh plan approval email (for a draft whose link expired)."""
    async with db.write() as session:
        workflow = await service.get_visible(session, auth, workflow_id)
        return await service.resend_plan_email(session, settings, workflow)


@router.post(
    "/{workflow_id}/run",
    status_code=status.HTTP_201_CREATED,
    tags=["runs"],
    operation_id="startRun",
    summary="Run an active workflow now",
    responses=errors(409) | BUDGET_429,
)
async def start_run(workflow_id: str, auth: Auth, db: DB, settings: Config) -> RunStarted:
    """Run an active workflow now. 422 unless active; 409 while another run is active; 429
    `budget_exceeded` when the team's runs per hour or tokens per day are used up."""
    async with db.write() as session:
        workflow = await service.get_visible(session, auth, workflow_id)
        run, _ = await run_service.start_run(
            session, settings, workflow, trigger=RunTrigger.MANUAL, started_by=auth.user_id
        )
    return RunStarted(run_id=run.id, conversation_id=run.conversation_id)


@router.get(
    "/{workflow_id}/runs",
    tags=["runs"],
    operation_id="listRuns",
    summary="List a workflow's runs, a page at a time",
)
async def list_runs(
    workflow_id: str,
    auth: Auth,
    db: DB,
    settings: Config,
    cursor: Annotated[
        str | None, Query(max_length=20, description="`nextCursor` of the previous page.")
    ] = None,
) -> RunPage:
    """All runs, newest first, 50 a page."""
    # This list's cursor is the run number the previous page ended at, as it always was.
    before = None if cursor is None else paging.row_id(cursor)
    async with db.read() as session:
        workflow = await service.get_visible(session, auth, workflow_id)
        runs = await run_repository.list_runs(
            session, workflow.id, limit=RUNS_PAGE_SIZE + 1, before_number=before
        )
    page = list(runs[:RUNS_PAGE_SIZE])
    next_cursor = str(page[-1].run_number) if len(runs) > RUNS_PAGE_SIZE else None
    return RunPage(
        runs=[run_service.run_summary(settings, run) for run in page], next_cursor=next_cursor
    )


@approvals_router.get(
    "/api/approvals",
    tags=["approvals"],
    operation_id="listApprovals",
    summary="List the decisions waiting for you",
)
async def list_approvals(auth: Auth, db: DB) -> ApprovalList:
    """Every draft plan and paused step of the current team that you may decide (owners and
    admins; a member's list is empty), oldest first, with the output waiting for approval.
    Decide a step with `decideStep` (optionally with `editedText`), a plan with
    `activateWorkflow`."""
    async with db.read() as session:
        return await inbox.items(session, auth)
