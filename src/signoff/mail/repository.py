"""Queries for the mail outbox (reads for the dev mailbox; the sender claims rows itself)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from signoff.models import OutboxMail


async def list_for_mailbox(
    session: AsyncSession, team_id: str, email: str, *, before: int | None = None, limit: int = 50
) -> Sequence[OutboxMail]:
    """The outbox as one team's members may see it, newest first: the team's emails, plus the
    team-less ones (email verification) addressed to ``email`` itself, never another
    person's. ``before`` (an id) pages back through older emails."""
    query = select(OutboxMail).where(
        or_(
            OutboxMail.team_id == team_id,
            and_(
                OutboxMail.team_id.is_(None),
                func.lower(OutboxMail.to_address) == email.lower(),
            ),
        )
    )
    if before is not None:
        query = query.where(OutboxMail.id < before)
    # Ids grow with every row, so they order the outbox even when timestamps tie.
    result = await session.scalars(query.order_by(OutboxMail.id.desc()).limit(limit))
    return result.all()
