"""``GET /api/audit``: the current team's audit trail, for owners and admins."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query

from signoff.audit import repository
from signoff.audit.repository import AuditFilter
from signoff.audit.schemas import AuditEventOut, AuditPage
from signoff.auth.dependencies import Auth
from signoff.dependencies import DB
from signoff.errors import Unprocessable
from signoff.kit import cursor
from signoff.models import Role

router = APIRouter(prefix="/api/audit", tags=["audit"])

DEFAULT_LIMIT = 50
MAX_LIMIT = 200


def encode_cursor(event_id: int) -> str:
    """The audit list's cursor: the id the page ended at."""
    return cursor.encode("audit", event_id)


def decode_cursor(text: str) -> int:
    """The id a cursor names; anything this API did not give out is a 422."""
    (event_id,) = cursor.decode("audit", text, 1)
    return cursor.row_id(event_id)


def _utc(moment: datetime | None, name: str) -> datetime | None:
    """A filter time in UTC; one without a time zone (ambiguous) or beyond the calendar once
    moved to UTC is a 422."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        raise Unprocessable(
            f"Give {name} with a time zone (e.g. 2025-01-31T09:00:00Z).",
            details=[{"field": name, "message": "time zone missing"}],
        )
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise Unprocessable(
            f"{name} is out of range.", details=[{"field": name, "message": "out of range"}]
        ) from None


@router.get("", operation_id="listAuditEvents", summary="List the team's audit trail")
async def list_audit_events(
    auth: Auth,
    db: DB,
    object_type: Annotated[
        str | None, Query(alias="objectType", max_length=24, description="e.g. `run`, `step`.")
    ] = None,
    object_id: Annotated[str | None, Query(alias="objectId", max_length=120)] = None,
    workflow_id: Annotated[
        str | None,
        Query(alias="workflowId", max_length=64, description="Everything about one workflow."),
    ] = None,
    actor: Annotated[
        str | None, Query(max_length=320, description="A user id or an email address.")
    ] = None,
    action: Annotated[str | None, Query(max_length=40, description="e.g. `step.approve`.")] = None,
    since: Annotated[datetime | None, Query(description="At or after (ISO 8601).")] = None,
    until: Annotated[datetime | None, Query(description="Before (ISO 8601).")] = None,
    cursor: Annotated[
        str | None, Query(max_length=40, description="`nextCursor` of the previous page.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
) -> AuditPage:
    """Who decided or changed what in the current team, newest first (owners and admins).

    Each page ends with `nextCursor`: pass it back with the same filters for the next page.
    Paging is by the events' order of recording, so events recorded meanwhile never shift a
    page; they appear at the top of a fresh first page.
    """
    auth.require_role(auth.current_team_id, Role.ADMIN)
    where = AuditFilter(
        object_type=object_type,
        object_id=object_id,
        workflow_id=workflow_id,
        actor=actor,
        action=action,
        since=_utc(since, "since"),
        until=_utc(until, "until"),
    )
    before = None if cursor is None else decode_cursor(cursor)
    async with db.read() as session:
        events = await repository.page(
            session, auth.current_team_id, where, before_id=before, limit=limit + 1
        )
    shown = list(events[:limit])
    next_cursor = encode_cursor(shown[-1].id) if len(events) > limit else None
    return AuditPage(
        events=[AuditEventOut.model_validate(event) for event in shown], next_cursor=next_cursor
    )
