"""Queries for users, teams, memberships and sessions."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from signoff.config import Settings
from signoff.models import (
    AuthSession,
    EmailVerification,
    Membership,
    Role,
    Team,
    User,
)


async def get_user_by_email(session: AsyncSession, email: str) -> User | None:
    return await session.scalar(select(User).where(User.email == email.lower()))


async def session_with_teams(
    session: AsyncSession, token_hash: str
) -> Sequence[tuple[AuthSession, User, Team | None, Role | None]]:
    """A token's session and user with each of the user's teams and roles, oldest membership
    first; one row with no team if they have none, no rows for an unknown token. One query:
    every authenticated request runs it."""
    rows = await session.execute(
        select(AuthSession, User, Team, Membership.role)
        .join(User, User.id == AuthSession.user_id)
        .outerjoin(Membership, Membership.user_id == User.id)
        .outerjoin(Team, Team.id == Membership.team_id)
        .where(AuthSession.token_hash == token_hash)
        .order_by(Membership.created_at, Team.id)
    )
    return [(auth_session, user, team, role) for auth_session, user, team, role in rows.all()]


async def list_memberships(session: AsyncSession, user_id: str) -> Sequence[tuple[Team, Role]]:
    """The user's teams with their role, oldest membership first (the first is the default)."""
    rows = await session.execute(
        select(Team, Membership.role)
        .join(Membership, Membership.team_id == Team.id)
        .where(Membership.user_id == user_id)
        .order_by(Membership.created_at, Team.id)
    )
    return [(team, role) for team, role in rows.all()]


async def get_membership(session: AsyncSession, team_id: str, user_id: str) -> Membership | None:
    return await session.get(Membership, (team_id, user_id))


async def list_team_members(
    session: AsyncSession, team_id: str, *, role: Role | None = None
) -> Sequence[tuple[User, Role]]:
    query = (
        select(User, Membership.role)
        .join(Membership, Membership.user_id == User.id)
        .where(Membership.team_id == team_id)
        .order_by(Membership.created_at, User.email)
    )
    if role is not None:
        query = query.where(Membership.role == role)
    rows = await session.execute(query)
    return [(user, member_role) for user, member_role in rows.all()]


async def decider_recipients(session: AsyncSession, settings: Settings, team_id: str) -> list[User]:
    """The members that approval emails (plans, steps) go to: everyone allowed to decide, the
    owners and the admins, owners first.

    In production only verified addresses receive them (docs/api.md, Accounts and teams): a
    mistyped address must not receive the team's plans and outputs. Development holds nothing
    back."""
    members = await list_team_members(session, team_id)
    deciders = [
        (role != Role.OWNER, user)
        for user, role in members
        if role.at_least(Role.ADMIN) and receives_team_mail(settings, user.email_verified_at)
    ]
    # sorted() is stable: within owners and within admins, the membership order stays.
    return [user for _admin, user in sorted(deciders, key=lambda pair: pair[0])]


async def unverified_deciders(session: AsyncSession, settings: Settings, team_id: str) -> list[str]:
    """The owners' and admins' addresses that :func:`decider_recipients` leaves out."""
    if not settings.is_production:
        return []
    members = await list_team_members(session, team_id)
    return [
        user.email
        for user, role in members
        if role.at_least(Role.ADMIN) and not receives_team_mail(settings, user.email_verified_at)
    ]


def receives_team_mail(settings: Settings, email_verified_at: datetime | None) -> bool:
    """Whether a member with this address gets workflow emails: in production only a verified
    address (docs/api.md, Accounts and teams), in development any."""
    return not settings.is_production or email_verified_at is not None


async def get_verification_by_token_hash(
    session: AsyncSession, token_hash: str
) -> EmailVerification | None:
    return await session.scalar(
        select(EmailVerification).where(EmailVerification.token_hash == token_hash)
    )


async def take_team_turn(session: AsyncSession, team_id: str) -> None:
    """Wait for the team's other counted actions in progress (PostgreSQL: the team's row locked
    until the transaction ends; SQLite's writes are serial), so a count made next sees theirs:
    budgets, invitations. ``FOR NO KEY UPDATE``, not ``FOR UPDATE``: every insert that
    references the team (a run, an asset, an outbox row, a membership) takes a key share lock
    on its row, which ``FOR UPDATE`` would conflict with, and deadlock with."""
    await session.execute(select(Team.id).where(Team.id == team_id).with_for_update(key_share=True))


async def verification_times_since(
    session: AsyncSession, user_id: str, since: datetime
) -> Sequence[datetime]:
    """When verification links were sent to the user since ``since`` (for the send limit),
    after the user's other sends in progress have finished (PostgreSQL: the user's row locked
    until the transaction ends; SQLite's writes are serial), so a burst cannot all count the
    same past sends. ``FOR NO KEY UPDATE``: the new link's row takes a key share lock on the
    user, which ``FOR UPDATE`` would conflict with."""
    await session.execute(select(User.id).where(User.id == user_id).with_for_update(key_share=True))
    rows = await session.scalars(
        select(EmailVerification.created_at).where(
            EmailVerification.user_id == user_id, EmailVerification.created_at > since
        )
    )
    return rows.all()
