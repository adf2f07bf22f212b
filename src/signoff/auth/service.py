"""Account rules: signup, login (throttled: auth/throttle.py), sessions, memberships, role checks.

Services never commit; the caller owns the transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import timedelta

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from signoff.auth import repository, throttle, verification
from signoff.auth.passwords import verify_password
from signoff.config import Settings
from signoff.db import Database
from signoff.errors import Conflict, ErrorCode, Forbidden, NotFound, Unauthorized
from signoff.kit.clock import utc_now
from signoff.kit.ids import hash_token, new_token
from signoff.models import AuthSession, Membership, Role, Team, User


@dataclass(frozen=True)
class TeamRole:
    team_id: str
    team_name: str
    role: Role


@dataclass(frozen=True)
class AuthContext:
    """Who is calling: the user, their session, their teams, and the current team.

    Plain values, not ORM objects, so it can cross transactions freely.
    """

    user_id: str
    email: str
    session_id: str
    teams: tuple[TeamRole, ...]
    current_team_id: str

    @property
    def team_ids(self) -> list[str]:
        return [team.team_id for team in self.teams]

    @property
    def current_team(self) -> TeamRole:
        return next(team for team in self.teams if team.team_id == self.current_team_id)

    def in_team(self, team_id: str | None) -> AuthContext:
        """The same caller acting in ``team_id`` when they belong to it; else unchanged."""
        if team_id is None or team_id not in self.team_ids:
            return self
        return replace(self, current_team_id=team_id)

    def role_in(self, team_id: str) -> Role | None:
        return next((team.role for team in self.teams if team.team_id == team_id), None)

    def require_role(self, team_id: str, minimum: Role) -> Role:
        """The one role check. A team the user is not in is invisible (404), not forbidden."""
        role = self.role_in(team_id)
        if role is None:
            raise NotFound("Not found.")
        if not role.at_least(minimum):
            raise Forbidden(f"This needs the {minimum.value} role or higher; you are a {role}.")
        return role


async def create_user(
    session: AsyncSession,
    settings: Settings,
    *,
    email: str,
    password_hash: str,
    name: str | None,
    verified: bool = False,
) -> User:
    """Create a user with no team (signup gives them one; an invitation joins them to one).

    ``password_hash``: from :func:`hash_password`, computed before the transaction opened
    (it takes a fifth of a second of CPU, which would hold SQLite's one writer).
    ``verified``: the address is already proven (they came through a link emailed to it).
    """
    if await repository.get_user_by_email(session, email) is not None:
        raise Conflict("An account with this email already exists.", code=ErrorCode.EMAIL_TAKEN)
    user = User(
        email=email.lower(),
        name=(name or "").strip(),
        password_hash=password_hash,
        email_verified_at=utc_now() if verified else None,
    )
    session.add(user)
    try:
        await session.flush()
    except IntegrityError:
        # Two signups for one address at once: the database's unique index decided.
        raise Conflict(
            "An account with this email already exists.", code=ErrorCode.EMAIL_TAKEN
        ) from None
    return user


async def signup(
    session: AsyncSession,
    settings: Settings,
    *,
    email: str,
    password_hash: str,
    name: str | None,
) -> tuple[User, Team]:
    """Create a user and their own team, with the user as its owner, and email a link to
    verify the address (production sends workflow emails only to verified addresses)."""
    user = await create_user(session, settings, email=email, password_hash=password_hash, name=name)
    team = Team(name=f"{user.name or email.split('@')[0]}'s team")
    session.add(team)
    await session.flush()
    session.add(Membership(team_id=team.id, user_id=user.id, role=Role.OWNER))
    await session.flush()
    await verification.send_verification_email(session, settings, user)
    return user, team


@dataclass(frozen=True)
class SignedIn:
    user: User
    token: str  # the new session's (shown once, stored as a hash)


async def authenticate(
    db: Database, settings: Settings, *, email: str, password: str, client: str
) -> SignedIn | None:
    """A new session if the credentials match; else None, with the failure counted (see
    auth/throttle.py), or 429 while the throttle says wait.

    No transaction is open while the password is verified (a fifth of a second of CPU, which
    would hold SQLite's one writer for every other request): the user is read, the password
    checked, then one write checks the throttle again (a burst that passed the first look
    together is still counted, and refused without saying whether it guessed right), counts
    the outcome and opens the session.
    """
    attempt = throttle.Attempt(email.lower(), client)
    await throttle.pace(db, settings, attempt)
    async with db.read() as session:
        user = await repository.get_user_by_email(session, email)
    matches = await verify_password(settings, user.password_hash if user else None, password)
    async with db.write() as session:
        await throttle.take_turn(session, attempt)
        await throttle.check(session, settings, attempt)
        if user is None or not matches:
            await throttle.record_failure(session, attempt)
            return None
        await throttle.record_success(session, attempt)
        token = await create_session(session, settings, user)
    return SignedIn(user, token)


async def create_session(session: AsyncSession, settings: Settings, user: User) -> str:
    """Open a session for the user and return its token (shown once, stored as a hash)."""
    token = new_token()
    session.add(
        AuthSession(
            token_hash=hash_token(token),
            user_id=user.id,
            expires_at=utc_now() + timedelta(days=settings.session_days),
        )
    )
    await session.flush()
    return token


async def revoke_session(session: AsyncSession, session_id: str) -> None:
    auth_session = await session.get(AuthSession, session_id)
    if auth_session is not None and auth_session.revoked_at is None:
        auth_session.revoked_at = utc_now()


async def session_user(session: AsyncSession, token: str) -> tuple[AuthSession, User]:
    """The live session of a token and its user, whatever teams they are in (or none)."""
    auth_session, user, _teams = await _live_session(session, token)
    return auth_session, user


async def _live_session(
    session: AsyncSession, token: str
) -> tuple[AuthSession, User, tuple[TeamRole, ...]]:
    rows = await repository.session_with_teams(session, hash_token(token))
    if not rows:
        raise Unauthorized("Your session is invalid or has expired; sign in again.")
    auth_session, user = rows[0][0], rows[0][1]
    if auth_session.revoked_at is not None or auth_session.expires_at <= utc_now():
        raise Unauthorized("Your session is invalid or has expired; sign in again.")
    teams = tuple(
        TeamRole(team_id=team.id, team_name=team.name, role=role)
        for _session, _user, team, role in rows
        if team is not None and role is not None
    )
    return auth_session, user, teams


async def resolve(session: AsyncSession, token: str, team_id: str | None) -> AuthContext:
    """Turn a session token (and an optional ``X-Team-Id``) into an :class:`AuthContext`."""
    auth_session, user, teams = await _live_session(session, token)
    if team_id is not None:
        if all(team.team_id != team_id for team in teams):
            raise NotFound("No team with this id.", code=ErrorCode.TEAM_NOT_FOUND)
        current = team_id
    elif teams:
        current = teams[0].team_id
    else:
        raise Forbidden("You do not belong to any team.", code=ErrorCode.NO_TEAM)
    return AuthContext(
        user_id=user.id,
        email=user.email,
        session_id=auth_session.id,
        teams=teams,
        current_team_id=current,
    )


async def add_member(session: AsyncSession, *, team_id: str, user_id: str, role: Role) -> None:
    """Add a user to a team with a role (invitations build on this)."""
    if await repository.get_membership(session, team_id, user_id) is not None:
        raise Conflict(
            "This person is already a member of the team.", code=ErrorCode.ALREADY_MEMBER
        )
    session.add(Membership(team_id=team_id, user_id=user_id, role=role))
    await session.flush()
