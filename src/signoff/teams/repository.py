"""Queries for invitations and a team's owners.

Invitation queries take the team id: an invitation of another team is not found.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from signoff.kit.clock import utc_now
from signoff.models import Invitation, Membership, Role, Team, User


async def lock_team(session: AsyncSession, team_id: str) -> Team | None:
    """The team, locked until the transaction ends (PostgreSQL; SQLite's writes are serial).

    Membership changes take this lock first, so two owners demoting each other at once run one
    after the other and the second sees that only one owner is left.
    """
    return await session.scalar(select(Team).where(Team.id == team_id).with_for_update())


async def count_owners(session: AsyncSession, team_id: str) -> int:
    return int(
        await session.scalar(
            select(func.count())
            .select_from(Membership)
            .where(Membership.team_id == team_id, Membership.role == Role.OWNER)
        )
        or 0
    )


async def lock_invitation(
    session: AsyncSession, team_id: str, invitation_id: str
) -> Invitation | None:
    """The invitation, locked and read afresh (PostgreSQL): an accept that has just committed
    is seen, and one that has not yet started waits (its guarded UPDATE then misses)."""
    return await session.scalar(
        select(Invitation)
        .where(Invitation.team_id == team_id, Invitation.id == invitation_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )


async def get_invitation_by_token_hash(session: AsyncSession, token_hash: str) -> Invitation | None:
    return await session.scalar(select(Invitation).where(Invitation.token_hash == token_hash))


async def list_invitations(
    session: AsyncSession, team_id: str
) -> Sequence[tuple[Invitation, str | None]]:
    """The team's invitations, newest first, each with the inviter's address (if still known)."""
    rows = await session.execute(
        select(Invitation, User.email)
        .outerjoin(User, User.id == Invitation.invited_by)
        .where(Invitation.team_id == team_id)
        .order_by(Invitation.created_at.desc(), Invitation.id)
    )
    return [(invitation, inviter) for invitation, inviter in rows.all()]


async def open_invitations(session: AsyncSession, team_id: str, email: str) -> Sequence[Invitation]:
    """The team's invitations of the address that are neither accepted nor revoked, locked
    (PostgreSQL) so that one accepted meanwhile is not among them (as :func:`lock_invitation`)."""
    found = await session.scalars(
        select(Invitation)
        .where(
            Invitation.team_id == team_id,
            Invitation.email == email,
            Invitation.accepted_at.is_(None),
            Invitation.revoked_at.is_(None),
        )
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return found.all()


async def mark_invitation_accepted(session: AsyncSession, invitation_id: str, user_id: str) -> bool:
    """Use the invitation up; False if it was accepted or revoked meanwhile.

    The conditional UPDATE is what makes an invitation single-use: of two acceptances racing
    (two tabs, a double click), exactly one matches an open row.
    """
    result = await session.execute(
        update(Invitation)
        .where(
            Invitation.id == invitation_id,
            Invitation.accepted_at.is_(None),
            Invitation.revoked_at.is_(None),
        )
        .values(accepted_at=utc_now(), accepted_by=user_id)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


async def invitation_times_since(
    session: AsyncSession, team_id: str, email: str, since: datetime
) -> Sequence[datetime]:
    """When the team invited the address since ``since`` (for the send limit)."""
    rows = await session.scalars(
        select(Invitation.created_at).where(
            Invitation.team_id == team_id, Invitation.email == email, Invitation.created_at > since
        )
    )
    return rows.all()
