"""Run endpoints (SPEC §3.2): start, stop, list, detail, decide, fresh approval email, assets."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, status
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncSession

from signoff.auth.dependencies import Auth
from signoff.auth.service import AuthContext
from signoff.config import Settings, get_settings
from signoff.db import Database, get_db
from signoff.errors import Conflict, NotFound, Unprocessable
from signoff.mail.sender import wake_sender
from signoff.models import Asset, Role, Run, RunStatus, RunTrigger
from signoff.queue.dependencies import get_queue
from signoff.queue.jobs import JobQueue
from signoff.runs import conversation, emails, repository, service
from signoff.runs.schemas import (
    AssetOut,
    DecisionRequest,
    RunDetail,
    RunPage,
    RunStarted,
    RunStepOut,
    RunSummary,
)
from signoff.workflows import service as workflow_service
from signoff.workflows.schemas import EmailSentResponse

router = APIRouter(tags=["runs"])

DB = Annotated[Database, Depends(get_db)]
Config = Annotated[Settings, Depends(get_settings)]
Queue = Annotated[JobQueue, Depends(get_queue)]

PAGE_SIZE = 50


async def visible_run(
    session: AsyncSession, auth: AuthContext, workflow_id: str, run_id: int, minimum: Role
) -> Run:
    workflow = await workflow_service.get_visible(session, auth, workflow_id, minimum)
    run = await repository.get_run_in_workflow(session, workflow.id, run_id)
    if run is None:
        raise NotFound("No run with this id in this workflow.", code="run_not_found")
    return run


@router.post("/api/workflows/{workflow_id}/run", status_code=status.HTTP_201_CREATED)
async def start_run(
    workflow_id: str, auth: Auth, db: DB, settings: Config, queue: Queue
) -> RunStarted:
    """Run an active workflow now. 422 unless active; 409 while another run is active."""
    async with db.write() as session:
        workflow = await workflow_service.get_visible(session, auth, workflow_id)
        run, job = await service.start_run(
            session, settings, workflow, trigger=RunTrigger.MANUAL, started_by=auth.user_id
        )
    await queue.enqueue(job)
    return RunStarted(run_id=run.id, conversation_id=run.conversation_id)


@router.post("/api/workflows/{workflow_id}/runs/{run_id}/stop")
async def stop_run(workflow_id: str, run_id: int, auth: Auth, db: DB) -> RunSummary:
    """Stop an active run: failed, "Stopped by user"; the step in flight is abandoned."""
    async with db.write() as session:
        run = await visible_run(session, auth, workflow_id, run_id, Role.MEMBER)
        run = await service.stop_run(session, run.id)
    return RunSummary.model_validate(run)


@router.get("/api/workflows/{workflow_id}/runs")
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
        workflow = await workflow_service.get_visible(session, auth, workflow_id)
        runs = await repository.list_runs(
            session, workflow.id, limit=PAGE_SIZE + 1, before_number=before
        )
    page = list(runs[:PAGE_SIZE])
    next_cursor = str(page[-1].run_number) if len(runs) > PAGE_SIZE else None
    return RunPage(runs=[RunSummary.model_validate(run) for run in page], next_cursor=next_cursor)


async def run_detail(session: AsyncSession, run: Run) -> RunDetail:
    steps = await repository.list_steps(session, run.id)
    rows = await conversation.load_rows(session, run.conversation_id)
    return RunDetail(
        **RunSummary.model_validate(run).model_dump(),
        workflow_id=run.workflow_id,
        steps=[RunStepOut.model_validate(step) for step in steps],
        messages=conversation.public_messages(rows),
    )


@router.get("/api/workflows/{workflow_id}/runs/{run_id}")
async def get_run(workflow_id: str, run_id: int, auth: Auth, db: DB) -> RunDetail:
    """The run with its step rows and its conversation."""
    async with db.read() as session:
        run = await visible_run(session, auth, workflow_id, run_id, Role.MEMBER)
        return await run_detail(session, run)


@router.post("/api/workflows/{workflow_id}/runs/{run_id}/decision")
async def decide(
    workflow_id: str,
    run_id: int,
    body: DecisionRequest,
    auth: Auth,
    db: DB,
    settings: Config,
    queue: Queue,
    request: Request,
) -> RunDetail:
    """Approve or request changes on the step the run waits at (the email link's decision)."""
    async with db.write() as session:
        run = await visible_run(session, auth, workflow_id, run_id, Role.ADMIN)
        decision = await service.decide(
            session,
            settings,
            run_id=run.id,
            step_index=run.current_step_index,
            attempt=await _current_attempt(session, run),
            action=body.action,
            note=body.note,
            decided_by=auth.user_id,
            via="dashboard",
        )
        detail = await run_detail(session, decision.run)
    if decision.job is not None:
        await queue.enqueue(decision.job)
    wake_sender(request.app)
    return detail


async def _current_attempt(session: AsyncSession, run: Run) -> int:
    step = await repository.get_step(session, run.id, run.current_step_index)
    return step.attempt if step else 0


@router.post("/api/workflows/{workflow_id}/runs/{run_id}/approval-email")
async def resend_step_email(
    workflow_id: str, run_id: int, auth: Auth, db: DB, settings: Config, request: Request
) -> EmailSentResponse:
    """Send fresh Approve / Request changes links (the 2 h ones expired; the run waits on)."""
    async with db.write() as session:
        run = await visible_run(session, auth, workflow_id, run_id, Role.MEMBER)
        step = await repository.get_step(session, run.id, run.current_step_index)
        if run.status != RunStatus.AWAITING_APPROVAL or step is None:
            raise Conflict("This run is not waiting for approval.", code="not_awaiting")
        emailed = await emails.step_awaiting_approval(session, settings, run, step)
    wake_sender(request.app)
    return EmailSentResponse(
        message=f"Fresh approval links went to {', '.join(emailed)}."
        if emailed
        else "No owner could be emailed; decide from the dashboard.",
        emailed_to=emailed,
    )


def asset_out(asset: Asset) -> AssetOut:
    return AssetOut(
        id=asset.id,
        workflow_id=asset.workflow_id,
        run_id=asset.run_id,
        step_index=asset.step_index,
        attempt=asset.attempt,
        type=asset.type,
        status=asset.status,
        content=asset.content,
        data=asset.data,
        mime_type=asset.mime_type,
        created_at=asset.created_at,
        url=f"/api/assets/{asset.id}/content" if asset.mime_type.startswith("image/") else None,
    )


@router.get("/api/assets", tags=["assets"])
async def list_assets(
    auth: Auth,
    db: DB,
    run_id: Annotated[int | None, Query(alias="runId")] = None,
    asset_type: Annotated[str | None, Query(alias="type", max_length=32)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[AssetOut]:
    """What the current team's runs produced, newest first."""
    async with db.read() as session:
        assets = await repository.list_assets(
            session,
            [auth.current_team_id],
            run_id=run_id,
            asset_type=asset_type,
            limit=limit,
            offset=offset,
        )
    return [asset_out(asset) for asset in assets]


@router.get("/api/assets/{asset_id}/content", tags=["assets"])
async def asset_content(asset_id: str, auth: Auth, db: DB) -> Response:
    """The asset's bytes (an image) or text, for members of its team only."""
    async with db.read() as session:
        asset = await session.get(Asset, asset_id)
        if asset is None or asset.team_id not in auth.team_ids:
            raise NotFound("No asset with this id.", code="asset_not_found")
        blob = await repository.asset_blob(session, asset.id)
    body = blob if blob is not None else asset.content.encode()
    return Response(
        body,
        media_type=asset.mime_type,
        headers={"Cache-Control": "private, max-age=3600", "X-Content-Type-Options": "nosniff"},
    )
