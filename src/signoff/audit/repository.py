"""Audit queries: a team's events a page at a time, and who decided or stopped a run."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from signoff.models import AuditEvent


@dataclass(frozen=True)
class AuditFilter:
    object_type: str | None = None
    object_id: str | None = None
    workflow_id: str | None = None
    actor: str | None = None
    """A user id or the label (an email address, ``email link``, ``run 12``)."""
    action: str | None = None
    since: datetime | None = None
    until: datetime | None = None


async def page(
    session: AsyncSession,
    team_id: str,
    where: AuditFilter,
    *,
    before_id: int | None,
    limit: int,
) -> Sequence[AuditEvent]:
    """The team's events matching ``where``, newest first, with ids below ``before_id``."""
    query = select(AuditEvent).where(AuditEvent.team_id == team_id)
    if before_id is not None:
        query = query.where(AuditEvent.id < before_id)
    if where.object_type is not None:
        query = query.where(AuditEvent.object_type == where.object_type)
    if where.object_id is not None:
        query = query.where(AuditEvent.object_id == where.object_id)
    if where.workflow_id is not None:
        query = query.where(AuditEvent.workflow_id == where.workflow_id)
    if where.actor is not None:
        query = query.where(
            or_(AuditEvent.actor_user_id == where.actor, AuditEvent.actor == where.actor.lower())
        )
    if where.action is not None:
        query = query.where(AuditEvent.action == where.action)
    if where.since is not None:
        query = query.where(AuditEvent.at >= where.since)
    if where.until is not None:
        query = query.where(AuditEvent.at < where.until)
    result = await session.scalars(query.order_by(AuditEvent.id.desc()).limit(limit))
    return result.all()


async def run_events(
    session: AsyncSession, team_id: str, run_id: int
) -> tuple[dict[int, AuditEvent], AuditEvent | None]:
    """Who last decided each step of a run (by step index), and who stopped it (or None)."""
    result = await session.scalars(
        select(AuditEvent)
        .where(
            AuditEvent.team_id == team_id,
            or_(
                (AuditEvent.object_type == "step")
                & AuditEvent.object_id.startswith(f"{run_id}:", autoescape=True),
                (AuditEvent.object_type == "run") & (AuditEvent.object_id == str(run_id)),
            ),
        )
        .order_by(AuditEvent.id)
    )
    decided: dict[int, AuditEvent] = {}
    stopped = None
    for event in result:
        if event.object_type == "run":
            stopped = event
        else:
            decided[int(event.object_id.split(":", 1)[1])] = event
    return decided, stopped
