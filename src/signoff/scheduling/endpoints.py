"""A workflow's schedule fire log. (Changing the schedule is ``PATCH /api/workflows/{id}``.)"""

from __future__ import annotations

from fastapi import APIRouter

from signoff.auth.dependencies import Auth
from signoff.dependencies import DB
from signoff.scheduling.schemas import FireLog, FireOut
from signoff.scheduling.service import fire_log
from signoff.workflows import service as workflow_service

router = APIRouter(prefix="/api/workflows", tags=["scheduling"])

FIRES_SHOWN = 200


@router.get(
    "/{workflow_id}/fires",
    operation_id="listFires",
    summary="List a schedule's fire log",
    response_model=FireLog,
)
async def list_fires(workflow_id: str, auth: Auth, db: DB) -> list[FireOut]:
    """The schedule's fire log, newest first: due time, handled time, outcome, run."""
    async with db.read() as session:
        workflow = await workflow_service.get_visible(session, auth, workflow_id)
        fires = await fire_log(session, workflow.id, FIRES_SHOWN)
    return [FireOut.model_validate(fire) for fire in fires]
