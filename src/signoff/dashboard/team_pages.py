"""Dashboard pages for the current team: members and invitations, memory, the dev mailbox.

Every change goes through the same service function as the API (so the roles, the
last-owner rule and the invitation email are identical), as a form POST authenticated like
every dashboard form (:data:`~signoff.dashboard.pages.PageAuth`: session and CSRF token) that
redirects back with a one-time notice, or shows the page again with the error, the form's
values kept, and nothing changed.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from markupsafe import Markup, escape
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from signoff.audit.dependencies import CurrentActor
from signoff.auth import repository as auth_repository
from signoff.auth.dependencies import TEAM_COOKIE, set_browser_cookie
from signoff.auth.service import AuthContext
from signoff.config import Settings
from signoff.dashboard import formatting
from signoff.dashboard.pages import (
    LINK_HEADERS,
    PageAuth,
    PageRoute,
    confirm_page,
    dev_mailbox_enabled,
    flash,
    render,
)
from signoff.db import Database
from signoff.dependencies import DB, Config
from signoff.errors import AppError, NotFound, Unprocessable
from signoff.mail import repository as mail_repository
from signoff.memory import repository as memory_repository
from signoff.memory import service as memory_service
from signoff.memory.schemas import MAX_VALUE_LENGTH
from signoff.models import Invitation, OutboxMail, Role, Team
from signoff.teams import service as team_service
from signoff.teams.schemas import InviteRequest

router = APIRouter(prefix="/dashboard", include_in_schema=False, route_class=PageRoute)


CORE_KEY = "core"
MAILBOX_PAGE_SIZE = 50
# The mailbox shows one-time links: keep the page out of caches and its URL out of Referer.

NOTICES = {
    "invited": "The invitation is on its way; its link is valid for "
    f"{team_service.INVITATION_TTL.days} days.",
    "revoked": "The invitation was revoked: its link no longer works.",
    "role": "The role was changed.",
    "removed": "The member was removed from the team.",
    "left": "You left the team.",
    "saved": "Core memory was saved.",
    "cleared": "Core memory was cleared.",
}

# A link in a text part ends at whitespace or a quote; trailing punctuation is the sentence's.
_LINK = re.compile(r"https?://[^\s<>\"']+")
_TRAILING = ".,;:!?)"


def linkify(text: str) -> Markup:
    """The text, escaped, with every http(s) URL turned into a link to itself."""
    parts: list[str] = []
    position = 0
    for match in _LINK.finditer(text):
        url = match.group().rstrip(_TRAILING)
        parts.append(escape(text[position : match.start()]))
        parts.append(Markup('<a href="{0}" rel="noreferrer">{0}</a>').format(url))
        position = match.start() + len(url)
    parts.append(escape(text[position:]))
    return Markup("").join(parts)


def _back(path: str, settings: Settings, done: str) -> Response:
    response = RedirectResponse(path, status_code=303)
    flash(response, settings, NOTICES[done])
    return response


# -- team --------------------------------------------------------------------------------------

TEAM_PATH = "/dashboard/team"


async def _team_page(
    request: Request,
    db: Database,
    auth: AuthContext,
    *,
    error: AppError | None = None,
    invite_form: dict[str, str] | None = None,
) -> Response:
    team_id = auth.current_team_id
    role = auth.current_team.role
    async with db.read() as session:
        team = await session.get(Team, team_id)
        members = await auth_repository.list_team_members(session, team_id)
        invitations: Sequence[tuple[Invitation, str | None]] = []
        if role.at_least(Role.ADMIN):
            invitations = [
                (invitation, inviter)
                for invitation, inviter in await team_service.list_invitations(
                    session, auth, team_id
                )
                if team_service.invitation_status(invitation) == "pending"
            ]
    assert team is not None  # the caller's membership proves it exists
    # Admins hand out member and admin; the owner role is the owners' alone.
    grantable = [r for r in Role if r != Role.OWNER or role == Role.OWNER]
    return render(
        request,
        "team.html",
        {
            "auth": auth,
            "team": team,
            "role": role,
            "manages": role.at_least(Role.ADMIN),
            "grantable": grantable,
            "members": members,
            "invitations": invitations,
            "error": error.message if error else None,
            "invite_form": invite_form or {"email": "", "role": Role.MEMBER.value},
        },
        status_code=error.status if error else 200,
    )


async def _change_team(
    request: Request,
    db: Database,
    auth: AuthContext,
    settings: Settings,
    done: str,
    change: Callable[[AsyncSession], Awaitable[object]],
) -> Response:
    """Make one membership change in its own transaction: back to the team page with the
    notice of ``done``, or the page again with why not (nothing changed)."""
    try:
        async with db.write() as session:
            await change(session)
    except AppError as error:
        return await _team_page(request, db, auth, error=error)
    return _back(TEAM_PATH, settings, done)


@router.get("/team")
async def team_page(request: Request, auth: PageAuth, db: DB) -> Response:
    return await _team_page(request, db, auth)


@router.post("/team/invitations")
async def invite(
    request: Request,
    auth: PageAuth,
    actor: CurrentActor,
    db: DB,
    settings: Config,
    email: Annotated[str, Form()] = "",
    role: Annotated[str, Form()] = Role.MEMBER.value,
) -> Response:
    form = {"email": email, "role": role}
    try:
        try:
            body = InviteRequest.model_validate(form)
        except ValidationError as invalid:
            field = str(invalid.errors()[0]["loc"][0])
            message = (
                "Enter the email address to invite, like name@example.com."
                if field == "email"
                else "Choose a role: member, admin or owner."
            )
            raise Unprocessable(message) from None
        async with db.write() as session:
            await team_service.invite(
                session,
                settings,
                auth,
                actor,
                auth.current_team_id,
                email=body.email,
                role=body.role,
            )
    except AppError as error:
        return await _team_page(request, db, auth, error=error, invite_form=form)
    return _back(TEAM_PATH, settings, "invited")


@router.post("/team/invitations/{invitation_id}/revoke")
async def revoke_invitation(
    invitation_id: str,
    request: Request,
    auth: PageAuth,
    actor: CurrentActor,
    db: DB,
    settings: Config,
) -> Response:
    return await _change_team(
        request,
        db,
        auth,
        settings,
        "revoked",
        lambda session: team_service.revoke(
            session, auth, actor, auth.current_team_id, invitation_id
        ),
    )


@router.post("/team/members/{user_id}/role")
async def change_role(
    user_id: str,
    request: Request,
    auth: PageAuth,
    actor: CurrentActor,
    db: DB,
    settings: Config,
    role: Annotated[str, Form()] = "",
) -> Response:
    if role not in {choice.value for choice in Role}:
        return await _team_page(
            request, db, auth, error=Unprocessable("Choose a role: member, admin or owner.")
        )
    return await _change_team(
        request,
        db,
        auth,
        settings,
        "role",
        lambda session: team_service.change_role(
            session, auth, actor, auth.current_team_id, user_id, Role(role)
        ),
    )


@router.post("/team/members/{user_id}/remove")
async def remove_member(
    user_id: str,
    request: Request,
    auth: PageAuth,
    actor: CurrentActor,
    db: DB,
    settings: Config,
    confirmed: Annotated[str, Form()] = "",
) -> Response:
    if not confirmed:
        async with db.read() as session:
            members = await team_service.list_members(session, auth, auth.current_team_id)
        member = next((user for user, _role in members if user.id == user_id), None)
        if member is None:
            raise NotFound("No member with this id in this team.")
        return confirm_page(
            request,
            question=formatting.remove_member_question(member.name or member.email),
            button="Remove member",
            back="/dashboard/team",
        )
    return await _change_team(
        request,
        db,
        auth,
        settings,
        "removed",
        lambda session: team_service.remove_member(
            session, auth, actor, auth.current_team_id, user_id
        ),
    )


@router.post("/team/switch")
async def switch_team(
    auth: PageAuth, settings: Config, team_id: Annotated[str, Form()] = ""
) -> Response:
    """Work in another of the caller's teams: every page and form then acts in it."""
    if team_id not in auth.team_ids:
        raise NotFound("No team with this id.")
    response = RedirectResponse("/dashboard", status_code=303)
    set_browser_cookie(response, settings, TEAM_COOKIE, team_id)
    notice = f"You are working in {auth.in_team(team_id).current_team.team_name}."
    return flash(response, settings, notice)


@router.post("/team/leave")
async def leave_team(
    request: Request, auth: PageAuth, actor: CurrentActor, db: DB, settings: Config
) -> Response:
    try:
        async with db.write() as session:
            await team_service.leave(session, auth, actor, auth.current_team_id)
    except AppError as error:
        return await _team_page(request, db, auth, error=error)
    if len(auth.teams) > 1:
        return _back(TEAM_PATH, settings, "left")
    # No team is left to show a dashboard of: say so here rather than send them to one.
    return render(
        request,
        "team_message.html",
        {
            "heading": f"You left {auth.current_team.team_name}",
            "message": "You are not in any team now. To work in one, ask its owner or an "
            "admin for an invitation.",
            "failed": False,
            "action": None,
        },
    )


# -- memory ------------------------------------------------------------------------------------

MEMORY_PATH = "/dashboard/memory"


async def _memory_page(
    request: Request,
    db: Database,
    auth: AuthContext,
    *,
    error: AppError | None = None,
    draft: str | None = None,
) -> Response:
    async with db.read() as session:
        entries = await memory_repository.list_for_team(session, auth.current_team_id)
    core = next((entry for entry in entries if entry.key == CORE_KEY), None)
    return render(
        request,
        "memory.html",
        {
            "auth": auth,
            "core": core,
            "others": [entry for entry in entries if entry.key != CORE_KEY],
            "edits": auth.current_team.role.at_least(Role.ADMIN),
            "draft": draft if draft is not None else (core.value if core else ""),
            "max_length": MAX_VALUE_LENGTH,
            "error": error.message if error else None,
        },
        status_code=error.status if error else 200,
    )


@router.get("/memory")
async def memory_page(request: Request, auth: PageAuth, db: DB) -> Response:
    return await _memory_page(request, db, auth)


@router.post("/memory/core")
async def save_core(
    request: Request,
    auth: PageAuth,
    actor: CurrentActor,
    db: DB,
    settings: Config,
    value: Annotated[str, Form()] = "",
) -> Response:
    """Save core memory (admins and owners); saving it empty clears it."""
    value = value.replace("\r\n", "\n")  # browsers send a textarea's lines with CRLF
    team_id = auth.current_team_id
    try:
        auth.require_role(team_id, Role.ADMIN)
        if len(value) > MAX_VALUE_LENGTH:
            raise Unprocessable(
                f"Core memory can hold at most {MAX_VALUE_LENGTH:,} characters; "
                f"this is {len(value):,}."
            )
        async with db.write() as session:
            if value.strip():
                await memory_service.put(session, team_id, CORE_KEY, value, actor)
                done = "saved"
            else:
                if await memory_repository.get(session, team_id, CORE_KEY) is not None:
                    await memory_service.delete(session, team_id, CORE_KEY, actor)
                done = "cleared"
    except AppError as error:
        return await _memory_page(request, db, auth, error=error, draft=value)
    return _back(MEMORY_PATH, settings, done)


# -- dev mailbox -------------------------------------------------------------------------------


def _mail_view(mail: OutboxMail) -> dict[str, Any]:
    return {"mail": mail, "body": linkify(mail.text_body)}


@router.get("/mailbox")
async def mailbox_page(
    request: Request, auth: PageAuth, db: DB, settings: Config, before: int | None = None
) -> Response:
    """The dev mailbox: the outbox of the viewer's team (only without SMTP, never in
    production; elsewhere the page does not exist)."""
    if not dev_mailbox_enabled(settings):
        raise NotFound("There is no mailbox: emails are sent by SMTP.")
    async with db.read() as session:
        mails = await mail_repository.list_for_mailbox(
            session, auth.current_team_id, auth.email, before=before, limit=MAILBOX_PAGE_SIZE + 1
        )
    older = mails[MAILBOX_PAGE_SIZE - 1].id if len(mails) > MAILBOX_PAGE_SIZE else None
    return render(
        request,
        "mailbox.html",
        {
            "auth": auth,
            "mails": [_mail_view(mail) for mail in mails[:MAILBOX_PAGE_SIZE]],
            "older": older,
            "paged": before is not None,
        },
        headers=LINK_HEADERS,
    )
