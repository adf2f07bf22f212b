"""Run endpoints: the team's runs across workflows; stop, detail, rerun, retry, decide, a fresh
approval email; the team's assets.

Starting a run and listing a workflow's runs are workflow routes (``workflows/endpoints.py``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import Enum
from typing import Annotated

from fastapi import APIRouter, Path, Query, status
from fastapi.responses import Response

from signoff.audit.dependencies import CurrentActor
from signoff.auth.dependencies import Auth, AuthRead
from signoff.budgets.service import BUDGET_429
from signoff.dependencies import DB, Config
from signoff.errors import ErrorCode, NotFound, Unprocessable
from signoff.kit.openapi import errors
from signoff.kit.schemas import EmailSentResponse
from signoff.kit.storable import MAX_DB_INT
from signoff.models import Asset, Role, RunStatus, RunTrigger, Workflow
from signoff.runs import repository, service
from signoff.runs.repository import RunFilters
from signoff.runs.schemas import (
    AssetList,
    AssetOut,
    DecisionRequest,
    RerunRequest,
    RunDetail,
    RunListItem,
    RunSummary,
    TeamRunPage,
)

# Each route names its one tag: the team's assets are their own group.
router = APIRouter()
RUNS: list[str | Enum] = ["runs"]

# Run ids are 32-bit integer columns: a larger one is a 422, never sent to the database.
RunId = Annotated[int, Path(ge=1, le=MAX_DB_INT, description="The run's id (`runId`).")]
# What GET /api/assets/{id}/content can answer with: the media types tools store assets in.
ASSET_MEDIA_TYPES = ("image/png", "image/jpeg", "image/webp", "text/plain", "text/markdown")


def _utc(moment: datetime | None, name: str) -> datetime | None:
    """A filter's time; one without an offset is UTC."""
    if moment is None:
        return None
    try:
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00:00+05:00
        raise Unprocessable(
            f"{name} is out of range.", details=[{"field": name, "message": "out of range"}]
        ) from None


@router.get(
    "/api/runs",
    tags=RUNS,
    operation_id="listTeamRuns",
    summary="List the team's runs across workflows, a page at a time",
)
async def list_team_runs(
    auth: Auth,
    db: DB,
    run_status: Annotated[
        RunStatus | None, Query(alias="status", description="Only runs in this status.")
    ] = None,
    workflow_id: Annotated[
        str | None,
        Query(alias="workflowId", max_length=64, description="Only this workflow's runs."),
    ] = None,
    trigger: Annotated[RunTrigger | None, Query(description="Only runs started this way.")] = None,
    started_from: Annotated[
        datetime | None,
        Query(
            alias="startedFrom",
            description="Only runs started at or after this time (ISO 8601; UTC without an "
            "offset; a date alone is its midnight).",
        ),
    ] = None,
    started_before: Annotated[
        datetime | None,
        Query(alias="startedBefore", description="Only runs started before this time."),
    ] = None,
    q: Annotated[
        str | None,
        Query(max_length=200, description="Words in the workflow's title or goal (any case)."),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200, description="Runs per page.")] = 50,
    cursor: Annotated[
        str | None,
        Query(max_length=80, description="`nextCursor` of the previous page (same filters)."),
    ] = None,
) -> TeamRunPage:
    """The current team's runs across its workflows, newest first, filtered; the next page's
    cursor is the answer's `nextCursor` (null on the last page)."""
    after = None if cursor is None else service.decode_cursor(cursor)
    filters = RunFilters(
        status=run_status,
        workflow_id=workflow_id,
        trigger=trigger,
        started_from=_utc(started_from, "startedFrom"),
        started_before=_utc(started_before, "startedBefore"),
        search=(q or "").strip() or None,
    )
    async with db.read() as session:
        if workflow_id is not None:
            workflow = await session.get(Workflow, workflow_id)
            if workflow is None or workflow.team_id != auth.current_team_id:
                raise NotFound(
                    "No workflow with this id in this team.", code=ErrorCode.WORKFLOW_NOT_FOUND
                )
        rows = await repository.list_team_runs(
            session, auth.current_team_id, filters, limit=limit + 1, after=after
        )
    page = rows[:limit]
    return TeamRunPage(
        runs=[
            RunListItem(
                **RunSummary.model_validate(run).model_dump(),
                workflow_id=run.workflow_id,
                workflow_title=title,
            )
            for run, title in page
        ],
        next_cursor=service.encode_cursor(page[-1][0]) if len(rows) > limit else None,
    )


@router.post(
    "/api/workflows/{workflow_id}/runs/{run_id}/rerun",
    status_code=status.HTTP_201_CREATED,
    tags=RUNS,
    operation_id="rerunRun",
    summary="Rerun an ended run from a step",
    responses=errors(409) | BUDGET_429,
)
async def rerun(
    workflow_id: str, run_id: RunId, body: RerunRequest, auth: Auth, db: DB, settings: Config
) -> RunSummary:
    """A new run that copies this ended run's steps before `fromStepIndex` and its
    conversation up to that step, then runs the rest. 409 `run_active` while a run of the
    workflow is active; 422 `step_not_rerunnable` for a step after one the run did not complete."""
    async with db.write() as session:
        run = await service.get_visible(session, auth, workflow_id, run_id, Role.MEMBER)
        workflow = await service.workflow_of(session, run)
        new_run, _ = await service.rerun(
            session, settings, workflow, run, body.from_step_index, started_by=auth.user_id
        )
    return service.run_summary(settings, new_run)


@router.post(
    "/api/workflows/{workflow_id}/runs/{run_id}/retry",
    status_code=status.HTTP_201_CREATED,
    tags=RUNS,
    operation_id="retryRun",
    summary="Retry a failed run from the step it failed at",
    responses=errors(409) | BUDGET_429,
)
async def retry(
    workflow_id: str, run_id: RunId, auth: Auth, db: DB, settings: Config
) -> RunSummary:
    """A new run that copies the failed (or stopped) run up to the step it ended at and runs
    on from there. 409 `nothing_to_retry` for a completed run, `run_active` while a run of the
    workflow is active."""
    async with db.write() as session:
        run = await service.get_visible(session, auth, workflow_id, run_id, Role.MEMBER)
        workflow = await service.workflow_of(session, run)
        new_run, _ = await service.retry(session, settings, workflow, run, started_by=auth.user_id)
    return service.run_summary(settings, new_run)


@router.post(
    "/api/workflows/{workflow_id}/runs/{run_id}/stop",
    tags=RUNS,
    operation_id="stopRun",
    summary="Stop a run",
    responses=errors(409),
)
async def stop_run(
    workflow_id: str, run_id: RunId, auth: Auth, actor: CurrentActor, db: DB, settings: Config
) -> RunSummary:
    """Stop an active run: failed, "Stopped by user"; the step in flight is abandoned. Who
    stopped it shows as `stoppedBy` on the run."""
    async with db.write() as session:
        run = await service.get_visible(session, auth, workflow_id, run_id, Role.MEMBER)
        run = await service.stop_run(session, run.id, actor)
    return service.run_summary(settings, run)


@router.get(
    "/api/workflows/{workflow_id}/runs/{run_id}",
    tags=RUNS,
    operation_id="getRun",
    summary="Get a run with its steps and conversation",
)
async def get_run(
    workflow_id: str, run_id: RunId, reading: AuthRead, settings: Config
) -> RunDetail:
    """The run with its step rows and its conversation; who decided each step (`decidedBy`)
    and who stopped the run (`stoppedBy`); token counts with their `estimatedCostUsd`."""
    run = await service.get_visible(reading.session, reading.auth, workflow_id, run_id, Role.MEMBER)
    return await service.detail(reading.session, settings, run)


@router.post(
    "/api/workflows/{workflow_id}/runs/{run_id}/decision",
    tags=RUNS,
    operation_id="decideStep",
    summary="Approve or request changes on the waiting step",
    responses=errors(409),
)
async def decide(
    workflow_id: str,
    run_id: RunId,
    body: DecisionRequest,
    auth: Auth,
    actor: CurrentActor,
    db: DB,
    settings: Config,
) -> RunDetail:
    """Approve or request changes on the step the run waits at (the email link's decision)."""
    async with db.write() as session:
        run = await service.get_visible(session, auth, workflow_id, run_id, Role.ADMIN)
        decision = await service.decide_signed_in(session, settings, run, body, actor)
        return await service.detail(session, settings, decision.run)


@router.post(
    "/api/workflows/{workflow_id}/runs/{run_id}/approval-email",
    tags=RUNS,
    operation_id="resendStepEmail",
    summary="Send fresh step approval links",
    responses=errors(409),
)
async def resend_step_email(
    workflow_id: str, run_id: RunId, auth: Auth, db: DB, settings: Config
) -> EmailSentResponse:
    """Send fresh Approve / Request changes links (the 2 h ones expired; the run waits on)."""
    async with db.write() as session:
        run = await service.get_visible(session, auth, workflow_id, run_id, Role.MEMBER)
        return await service.resend_step_email(session, settings, run)


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


@router.get(
    "/api/assets",
    tags=["assets"],
    operation_id="listAssets",
    summary="List what runs produced",
    response_model=AssetList,
)
async def list_assets(
    auth: Auth,
    db: DB,
    run_id: Annotated[
        int | None, Query(alias="runId", ge=1, le=MAX_DB_INT, description="Only this run's.")
    ] = None,
    asset_type: Annotated[
        str | None,
        Query(alias="type", max_length=32, description="`post_outline`, `report`, …"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_DB_INT)] = 0,
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


@router.get(
    "/api/assets/{asset_id}/content",
    tags=["assets"],
    operation_id="getAssetContent",
    summary="Get an asset's bytes or text",
    response_class=Response,
    responses={
        200: {
            "description": "The image's bytes, or the text, in the asset's media type.",
            "content": {
                media_type: {"schema": {"type": "string", "format": "binary"}}
                if media_type.startswith("image/")
                else {"schema": {"type": "string"}}
                for media_type in ASSET_MEDIA_TYPES
            },
        }
    },
)
async def asset_content(asset_id: str, auth: Auth, db: DB) -> Response:
    """The asset's bytes (an image) or text, for members of its team only."""
    async with db.read() as session:
        asset = await session.get(Asset, asset_id)
        if asset is None or asset.team_id not in auth.team_ids:
            raise NotFound("No asset with this id.", code=ErrorCode.ASSET_NOT_FOUND)
        blob = await repository.asset_blob(session, asset.id)
    body = blob if blob is not None else asset.content.encode()
    return Response(
        body,
        media_type=asset.mime_type,
        headers={"Cache-Control": "private, max-age=3600"},
    )
