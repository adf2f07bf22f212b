"""Run endpoints: stop, detail, decide, a fresh approval email; the team's assets.

Starting a run and listing a workflow's runs are workflow routes (``workflows/endpoints.py``).
"""

from __future__ import annotations

from enum import Enum
from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.responses import Response

from signoff.audit.dependencies import CurrentActor
from signoff.auth.dependencies import Auth
from signoff.dependencies import DB, Config
from signoff.errors import ErrorCode, NotFound
from signoff.kit.openapi import errors
from signoff.kit.schemas import EmailSentResponse
from signoff.kit.storable import MAX_DB_INT
from signoff.models import Asset, Role
from signoff.runs import repository, service
from signoff.runs.schemas import (
    AssetList,
    AssetOut,
    DecisionRequest,
    RunDetail,
    RunSummary,
)

# Each route names its one tag: the team's assets are their own group.
router = APIRouter()
RUNS: list[str | Enum] = ["runs"]

# Run ids are 32-bit integer columns: a larger one is a 422, never sent to the database.
RunId = Annotated[int, Path(ge=1, le=MAX_DB_INT, description="The run's id (`runId`).")]
# What GET /api/assets/{id}/content can answer with: the media types tools store assets in.
ASSET_MEDIA_TYPES = ("image/png", "image/jpeg", "image/webp", "text/plain", "text/markdown")


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
    workflow_id: str, run_id: RunId, auth: Auth, db: DB, settings: Config
) -> RunDetail:
    """The run with its step rows and its conversation; who decided each step (`decidedBy`)
    and who stopped the run (`stoppedBy`); token counts with their `estimatedCostUsd`."""
    async with db.read() as session:
        run = await service.get_visible(session, auth, workflow_id, run_id, Role.MEMBER)
        return await service.detail(session, settings, run)


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
        headers={"Cache-Control": "private, max-age=3600", "X-Content-Type-Options": "nosniff"},
    )
