"""Team rules: invitations, roles, removing members, leaving (docs/api.md, Accounts and teams).

Every check goes through ``AuthContext.require_role``, so a team the caller is not in answers
404 and a role that is too low answers 403. Services never commit; endpoints own the transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from signoff.approvals.tokens import LinkError
from signoff.audit.service import Actor, record
from signoff.auth import repository as auth_repository
from signoff.auth import service as auth_service
from signoff.auth import verification
from signoff.auth.service import AuthContext
from signoff.config import Settings
from signoff.errors import Conflict, ErrorCode, Forbidden, NotFound
from signoff.kit.clock import utc_now
from signoff.kit.ids import hash_token, new_token
from signoff.mail import service as mail
from signoff.models import Invitation, Membership, Role, Team, User
from signoff.teams import repository
from signoff.teams.schemas import InvitationStatus

INVITATION_TTL = timedelta(days=7)
"""How long an invitation link works; it works once, can be revoked and is stored hashed."""


def invitation_status(invitation: Invitation, now: datetime | None = None) -> InvitationStatus:
    if invitation.accepted_at is not None:
        return "accepted"
    if invitation.revoked_at is not None:
        return "revoked"
    if invitation.expires_at <= (now or utc_now()):
        return "expired"
    return "pending"


def accept_url(settings: Settings, token: str) -> str:
    return f"{settings.public_base_url}/dashboard/invitations/{token}"


def _require_grant(auth: AuthContext, team_id: str, role: Role) -> None:
    """Admins hand out and take back member and admin; the owner role is the owners' alone:
    only owners make, unmake or remove owners, and invite (or uninvite) owners."""
    auth.require_role(team_id, Role.OWNER if role == Role.OWNER else Role.ADMIN)


async def _keep_an_owner(session: AsyncSession, team_id: str, message: str) -> None:
    """Refuse a change that would leave the team without an owner (call with the team locked):
    a team always keeps at least one owner."""
    if await repository.count_owners(session, team_id) <= 1:
        raise Conflict(message, code=ErrorCode.LAST_OWNER)


async def _locked_membership(session: AsyncSession, team_id: str, user_id: str) -> Membership:
    """The membership to change, after locking the team row: concurrent membership changes (two
    owners demoting each other) are decided one after the other."""
    await repository.lock_team(session, team_id)
    membership = await auth_repository.get_membership(session, team_id, user_id)
    if membership is None:
        raise NotFound("No member with this id in this team.", code=ErrorCode.MEMBER_NOT_FOUND)
    return membership


# -- members -----------------------------------------------------------------------------------


async def list_members(
    session: AsyncSession, auth: AuthContext, team_id: str
) -> Sequence[tuple[User, Role]]:
    auth.require_role(team_id, Role.ADMIN)
    return await auth_repository.list_team_members(session, team_id)


async def _record_member(
    session: AsyncSession, actor: Actor, team_id: str, action: str, user_id: str, detail: str
) -> None:
    record(
        session,
        actor,
        team_id=team_id,
        action=action,
        object_type="member",
        object_id=user_id,
        detail=detail,
    )


async def _email_of(session: AsyncSession, user_id: str) -> str:
    user = await session.get(User, user_id)
    assert user is not None  # a membership's foreign key
    return user.email


async def change_role(
    session: AsyncSession,
    auth: AuthContext,
    actor: Actor,
    team_id: str,
    user_id: str,
    role: Role,
) -> tuple[User, Role]:
    """Give a member another role; the last owner cannot be demoted (409)."""
    auth.require_role(team_id, Role.ADMIN)
    membership = await _locked_membership(session, team_id, user_id)
    _require_grant(auth, team_id, membership.role)
    _require_grant(auth, team_id, role)
    if membership.role == Role.OWNER and role != Role.OWNER:
        await _keep_an_owner(
            session,
            team_id,
            "This is the team's only owner: make someone else an owner first "
            "(a team always keeps at least one owner).",
        )
    before = membership.role
    membership.role = role
    await session.flush()
    user = await session.get(User, user_id)
    assert user is not None  # the membership's foreign key
    await _record_member(
        session, actor, team_id, "member.role", user_id, f"{user.email}: {before} → {role}."
    )
    return user, role


async def remove_member(
    session: AsyncSession, auth: AuthContext, actor: Actor, team_id: str, user_id: str
) -> None:
    """Take a member out of the team; their access ends when the transaction commits.

    No session needs cleaning up: every request resolves the caller's memberships afresh.
    """
    auth.require_role(team_id, Role.ADMIN)
    membership = await _locked_membership(session, team_id, user_id)
    _require_grant(auth, team_id, membership.role)
    if membership.role == Role.OWNER:
        await _keep_an_owner(
            session,
            team_id,
            "This is the team's only owner and cannot be removed "
            "(a team always keeps at least one owner).",
        )
    role = membership.role
    await session.delete(membership)
    await session.flush()
    email = await _email_of(session, user_id)
    await _record_member(
        session, actor, team_id, "member.remove", user_id, f"{email} ({role}) removed."
    )


async def leave(session: AsyncSession, auth: AuthContext, actor: Actor, team_id: str) -> None:
    """The caller leaves the team; its only owner must hand the role on first (409)."""
    auth.require_role(team_id, Role.MEMBER)
    membership = await _locked_membership(session, team_id, auth.user_id)
    if membership.role == Role.OWNER:
        await _keep_an_owner(
            session,
            team_id,
            "You are the team's only owner: make someone else an owner before you leave.",
        )
    role = membership.role
    await session.delete(membership)
    await session.flush()
    await _record_member(
        session, actor, team_id, "member.leave", auth.user_id, f"{auth.email} ({role}) left."
    )


# -- invitations -------------------------------------------------------------------------------


async def invite(
    session: AsyncSession,
    settings: Settings,
    auth: AuthContext,
    actor: Actor,
    team_id: str,
    *,
    email: str,
    role: Role,
) -> Invitation:
    """Invite an address with a role and email it the link; an earlier open invitation for
    the same address is revoked, so only the newest link works.

    Only the token's hash is stored; the link works for :data:`INVITATION_TTL`, once, for the
    invited address only (:func:`check_acceptable`).
    """
    _require_grant(auth, team_id, role)
    # Invitations of one team are issued one at a time (PostgreSQL), so two at once of the same
    # address each see the other's: one open link per address, and the send limit holds.
    await auth_repository.take_team_turn(session, team_id)
    email = email.lower()
    existing = await auth_repository.get_user_by_email(session, email)
    if existing is not None and await auth_repository.get_membership(session, team_id, existing.id):
        raise Conflict(f"{email} is already a member of this team.", code=ErrorCode.ALREADY_MEMBER)
    sent = await repository.invitation_times_since(
        session, team_id, email, utc_now() - verification.SEND_WINDOW
    )
    verification.check_send_limit(sent, "invitations")
    # A new invitation supersedes the open ones, each withdrawn as by revoke(): so an admin
    # cannot replace an owner's invitation of an owner.
    for superseded in await repository.open_invitations(session, team_id, email):
        _require_grant(auth, team_id, superseded.role)
        _withdraw(session, actor, superseded, "superseded by a new invitation")
    token = new_token()
    invitation = Invitation(
        team_id=team_id,
        email=email,
        role=role,
        token_hash=hash_token(token),
        invited_by=auth.user_id,
        expires_at=utc_now() + INVITATION_TTL,
    )
    session.add(invitation)
    await session.flush()
    team = await session.get(Team, team_id)
    inviter = await session.get(User, auth.user_id)
    # The caller's membership proves both exist.
    assert team is not None
    assert inviter is not None
    inviter_name = inviter.name or inviter.email
    await mail.enqueue(
        session,
        settings,
        kind="invitation",
        to=email,
        subject=f"{inviter_name} invited you to join {team.name} on Signoff",
        template="invitation",
        context={
            "team_name": team.name,
            "inviter_name": inviter_name,
            "inviter_email": inviter.email,
            "role": role.value,
            "has_account": existing is not None,
            "accept_url": accept_url(settings, token),
            "expires_days": INVITATION_TTL.days,
        },
        team_id=team_id,
    )
    record(
        session,
        actor,
        team_id=team_id,
        action="member.invite",
        object_type="invitation",
        object_id=invitation.id,
        detail=f"{email} invited as {role}.",
    )
    return invitation


async def list_invitations(
    session: AsyncSession, auth: AuthContext, team_id: str
) -> Sequence[tuple[Invitation, str | None]]:
    auth.require_role(team_id, Role.ADMIN)
    return await repository.list_invitations(session, team_id)


async def revoke(
    session: AsyncSession, auth: AuthContext, actor: Actor, team_id: str, invitation_id: str
) -> None:
    """Withdraw an invitation: its link stops working. Revoking an owner invitation takes an
    owner, like issuing one."""
    auth.require_role(team_id, Role.ADMIN)
    invitation = await repository.lock_invitation(session, team_id, invitation_id)
    if invitation is None:
        raise NotFound("No invitation with this id.", code=ErrorCode.INVITATION_NOT_FOUND)
    _require_grant(auth, team_id, invitation.role)
    if invitation.accepted_at is not None:
        raise Conflict(
            "This invitation was already accepted; remove the member instead.",
            code=ErrorCode.INVITATION_USED,
        )
    if invitation.revoked_at is not None:
        raise Conflict("This invitation was already revoked.", code=ErrorCode.INVITATION_REVOKED)
    _withdraw(session, actor, invitation, "withdrawn")
    await session.flush()


def _withdraw(session: AsyncSession, actor: Actor, invitation: Invitation, why: str) -> None:
    """Revoke the invitation (its link stops working), with its audit event."""
    invitation.revoked_at = utc_now()
    record(
        session,
        actor,
        team_id=invitation.team_id,
        action="invitation.revoke",
        object_type="invitation",
        object_id=invitation.id,
        detail=f"Invitation of {invitation.email} ({invitation.role}) {why}.",
    )


async def open_invitation(session: AsyncSession, token: str) -> Invitation:
    """The invitation of a link if it can still be accepted; else why not (LinkError)."""
    invitation = await repository.get_invitation_by_token_hash(session, hash_token(token))
    if invitation is None:
        raise LinkError("This invitation link is not valid.", code=ErrorCode.INVITATION_INVALID)
    status = invitation_status(invitation)
    if status == "accepted":
        raise LinkError("This invitation was already used.", code=ErrorCode.INVITATION_USED)
    if status == "revoked":
        raise LinkError(
            "This invitation was withdrawn; ask the team for a new one.",
            code=ErrorCode.INVITATION_REVOKED,
        )
    if status == "expired":
        raise LinkError(
            f"This invitation expired on {invitation.expires_at:%Y-%m-%d %H:%M} UTC; "
            "ask the team for a new one.",
            code=ErrorCode.INVITATION_EXPIRED,
        )
    return invitation


async def check_acceptable(session: AsyncSession, invitation: Invitation, user: User) -> None:
    """Why ``user`` cannot accept this open invitation, if there is a reason: accepting needs
    the invited address, so a person signed in as someone else is told so and nothing changes."""
    if user.email != invitation.email:
        raise Forbidden(
            f"This invitation is for {invitation.email}, but you are signed in as "
            f"{user.email}. Sign out and open the link again, or ask the team to invite "
            f"{user.email}.",
            code=ErrorCode.INVITATION_OTHER_ACCOUNT,
        )
    if await auth_repository.get_membership(session, invitation.team_id, user.id) is not None:
        raise Conflict("You are already a member of this team.", code=ErrorCode.ALREADY_MEMBER)


async def accept(
    session: AsyncSession, invitation: Invitation, user: User, *, user_agent: str | None
) -> Team:
    """Join the invitation's team as ``user``, who must be the invited address.

    The address counts as verified from now on: the link was delivered to it. The audit trail
    names the new member, through the email link.
    """
    await check_acceptable(session, invitation, user)
    if not await repository.mark_invitation_accepted(session, invitation.id, user.id):
        raise LinkError("This invitation was already used.", code=ErrorCode.INVITATION_USED)
    await auth_service.add_member(
        session, team_id=invitation.team_id, user_id=user.id, role=invitation.role
    )
    if user.email_verified_at is None:
        user.email_verified_at = utc_now()
        await session.flush()
    team = await session.get(Team, invitation.team_id)
    assert team is not None  # the invitation's foreign key
    await _record_member(
        session,
        Actor.email_link(user_agent, user_id=user.id, email=user.email),
        invitation.team_id,
        "member.accept",
        user.id,
        f"{user.email} joined as {invitation.role} (invitation {invitation.id}).",
    )
    return team


async def accept_with_signup(
    session: AsyncSession,
    settings: Settings,
    token: str,
    *,
    password_hash: str,
    name: str | None,
    user_agent: str | None,
) -> tuple[User, Team]:
    """Create the invited person's account and join the team.

    The account gets no team of its own: it came to join this one (signup's own team is
    for people who start on their own).
    """
    invitation = await open_invitation(session, token)
    try:
        user = await auth_service.create_user(
            session,
            settings,
            email=invitation.email,
            password_hash=password_hash,
            name=name,
            verified=True,
        )
    except Conflict:
        raise Conflict(
            f"An account for {invitation.email} exists already: sign in to accept.",
            code=ErrorCode.EMAIL_TAKEN,
        ) from None
    team = await accept(session, invitation, user, user_agent=user_agent)
    return user, team
