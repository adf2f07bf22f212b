"""Changing a workflow's schedule, and its fire log."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from signoff.auth.dependencies import Auth
from signoff.db import Database, get_db
from signoff.errors import Conflict
from signoff.kit.clock import utc_now
from signoff.models import Role, WorkflowStatus
from signoff.scheduling.schemas import FireOut, ScheduleChange
from signoff.scheduling.service import arm, fire_log
from signoff.workflows import service as workflow_service
from signoff.workflows.endpoints import load_detail
from signoff.workflows.schemas import WorkflowDetail

router = APIRouter(prefix="/api/workflows", tags=["scheduling"])

DB = Annotated[Database, Depends(get_db)]
FIRES_SHOWN = 200


@router.patch("/{workflow_id}")
async def change_schedule(
    workflow_id: str, body: ScheduleChange, auth: Auth, db: DB
) -> WorkflowDetail:
    """Change or remove the schedule (and its timezone); an active workflow is re-armed."""
    async with db.write() as session:
        workflow = await workflow_service.get_visible(session, auth, workflow_id, Role.ADMIN)
        if workflow.status == WorkflowStatus.ARCHIVED:
            raise Conflict("An archived workflow has no schedule to change.", code="archived")
        if "schedule" in body.model_fields_set:
            workflow.schedule = body.schedule
        if body.timezone is not None:
            workflow.timezone = body.timezone
        workflow.updated_at = utc_now()
        arm(workflow)
        await session.flush()
        return await load_detail(session, workflow)


@router.get("/{workflow_id}/fires")
async def list_fires(workflow_id: str, auth: Auth, db: DB) -> list[FireOut]:
    """The schedule's fire log, newest first: due time, handled time, outcome, run."""
    async with db.read() as session:
        workflow = await workflow_service.get_visible(session, auth, workflow_id)
        fires = await fire_log(session, workflow.id, FIRES_SHOWN)
    return [FireOut.model_validate(fire) for fire in fires]
