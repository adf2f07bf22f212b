"""Team endpoints: members, roles, invitations, leaving; and a fresh verification email.

Team routes name the team in the path (``/api/teams/{teamId}/…``, the ids ``GET /api/me``
lists), so a client can manage any team it belongs to; a team the caller is not in answers 404.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, status

from signoff.audit.dependencies import CurrentActor
from signoff.auth import verification
from signoff.auth.dependencies import Auth
from signoff.dependencies import DB, Config
from signoff.kit.openapi import errors
from signoff.kit.schemas import EmailSentResponse
from signoff.models import Invitation, Role, User
from signoff.teams import service
from signoff.teams.schemas import (
    InvitationList,
    InvitationOut,
    InvitationSent,
    InviteRequest,
    MemberList,
    MemberOut,
    RoleChange,
)

router = APIRouter(prefix="/api/teams", tags=["teams"])
account_router = APIRouter(prefix="/api/me", tags=["accounts"])


def member_out(user: User, role: Role) -> MemberOut:
    return MemberOut(
        user_id=user.id,
        email=user.email,
        name=user.name,
        role=role,
        email_verified=user.email_verified_at is not None,
    )


def invitation_out(invitation: Invitation, invited_by: str | None) -> InvitationOut:
    return InvitationOut(
        id=invitation.id,
        email=invitation.email,
        role=invitation.role,
        status=service.invitation_status(invitation),
        invited_by=invited_by,
        created_at=invitation.created_at,
        expires_at=invitation.expires_at,
        accepted_at=invitation.accepted_at,
        revoked_at=invitation.revoked_at,
    )


@router.get(
    "/{team_id}/members",
    operation_id="listMembers",
    summary="List a team's members",
    response_model=MemberList,
)
async def list_members(team_id: str, auth: Auth, db: DB) -> list[MemberOut]:
    """The team's members and their roles, oldest member first (owners and admins)."""
    async with db.read() as session:
        members = await service.list_members(session, auth, team_id)
    return [member_out(user, role) for user, role in members]


@router.patch(
    "/{team_id}/members/{user_id}",
    operation_id="changeRole",
    summary="Change a member's role",
    responses=errors(409),
)
async def change_role(
    team_id: str, user_id: str, body: RoleChange, auth: Auth, actor: CurrentActor, db: DB
) -> MemberOut:
    """Change a member's role (owners and admins). Only owners make or unmake owners; the
    team's last owner cannot be demoted (409)."""
    async with db.write() as session:
        user, role = await service.change_role(session, auth, actor, team_id, user_id, body.role)
    return member_out(user, role)


@router.delete(
    "/{team_id}/members/{user_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    operation_id="removeMember",
    summary="Remove a member",
    responses=errors(409),
)
async def remove_member(
    team_id: str, user_id: str, auth: Auth, actor: CurrentActor, db: DB
) -> Response:
    """Remove a member (owners and admins; only owners remove owners). Their access to the
    team's workflows ends at once; the last owner cannot be removed (409)."""
    async with db.write() as session:
        await service.remove_member(session, auth, actor, team_id, user_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/{team_id}/leave",
    status_code=status.HTTP_204_NO_CONTENT,
    operation_id="leaveTeam",
    summary="Leave a team",
    responses=errors(409),
)
async def leave_team(team_id: str, auth: Auth, actor: CurrentActor, db: DB) -> Response:
    """Leave the team (any member). Its only owner must make someone else owner first (409)."""
    async with db.write() as session:
        await service.leave(session, auth, actor, team_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/{team_id}/invitations",
    status_code=status.HTTP_201_CREATED,
    operation_id="inviteMember",
    summary="Invite someone to a team",
    responses=errors(409, 429),
)
async def invite(
    team_id: str,
    body: InviteRequest,
    auth: Auth,
    actor: CurrentActor,
    db: DB,
    settings: Config,
    request: Request,
) -> InvitationSent:
    """Invite an address with a role (owners and admins; only owners invite owners). The
    email's link is valid for 7 days and works once; inviting the address again replaces it.
    An address that is already a member answers 409."""
    async with db.write() as session:
        invitation = await service.invite(
            session, settings, auth, actor, team_id, email=body.email, role=body.role
        )
    days = service.INVITATION_TTL.days
    return InvitationSent(
        **invitation_out(invitation, auth.email).model_dump(),
        message=f"An invitation to join as {invitation.role} went to {invitation.email}; "
        f"its link is valid for {days} days.",
    )


@router.get(
    "/{team_id}/invitations",
    operation_id="listInvitations",
    summary="List a team's invitations",
    response_model=InvitationList,
)
async def list_invitations(team_id: str, auth: Auth, db: DB) -> list[InvitationOut]:
    """Every invitation of the team, newest first, with its status (owners and admins)."""
    async with db.read() as session:
        rows = await service.list_invitations(session, auth, team_id)
    return [invitation_out(invitation, inviter) for invitation, inviter in rows]


@router.delete(
    "/{team_id}/invitations/{invitation_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    operation_id="revokeInvitation",
    summary="Revoke an invitation",
    responses=errors(409),
)
async def revoke_invitation(
    team_id: str, invitation_id: str, auth: Auth, actor: CurrentActor, db: DB
) -> Response:
    """Revoke an invitation: its link stops working (owners and admins; an invitation to
    become owner, owners only). 409 if it was already accepted or revoked."""
    async with db.write() as session:
        await service.revoke(session, auth, actor, team_id, invitation_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@account_router.post(
    "/verification-email",
    operation_id="sendVerificationEmail",
    summary="Send a fresh link to verify your address",
    responses=errors(409, 429),
)
async def send_verification_email(
    auth: Auth, db: DB, settings: Config, request: Request
) -> EmailSentResponse:
    """Email a fresh link to verify your address (the one from signup expires after 7 days).
    In production, workflow emails go only to verified addresses. 409 once verified."""
    async with db.write() as session:
        user = await session.get(User, auth.user_id)
        assert user is not None  # resolved a moment ago; users are never deleted
        emailed = await verification.send_new_link(session, settings, user)
    return EmailSentResponse(
        message=f"A verification link went to {emailed}; it is valid for "
        f"{verification.VERIFICATION_TTL.days} days.",
        emailed_to=[emailed],
    )
