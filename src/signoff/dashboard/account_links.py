"""The pages behind the links of invitation and verification emails (server-rendered).

They work before the full dashboard exists and with no JavaScript. A GET never changes anything
(mail scanners open links); every change is a form POST (docs/security.md). The token in the
link is the authority; where the session cookie decides something too (who joins, who signs
out), the POST needs the session's CSRF token, and creating an account from an invitation is
refused when the browser says the form came from another site, like signing up.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from signoff.auth import repository as auth_repository
from signoff.auth import service as auth_service
from signoff.auth import verification
from signoff.auth.csrf import verify_same_origin
from signoff.auth.dependencies import SESSION_COOKIE, set_session_cookie, verify_session_csrf
from signoff.auth.passwords import hash_password
from signoff.auth.schemas import MIN_PASSWORD_LENGTH
from signoff.dashboard.pages import LINK_HEADERS, render
from signoff.db import Database
from signoff.dependencies import DB, Config
from signoff.errors import AppError, ErrorCode, Unauthorized, Unprocessable
from signoff.models import AuthSession, Invitation, Team, User
from signoff.teams import service

router = APIRouter(prefix="/dashboard", include_in_schema=False)


async def signed_in(request: Request, db: DB) -> tuple[AuthSession, User] | None:
    """The session cookie's user, whether or not they are in any team (they may be joining
    their first); None when there is no valid session."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    async with db.read() as session:
        try:
            return await auth_service.session_user(session, token)
        except Unauthorized:
            return None


Visitor = Annotated[tuple[AuthSession, User] | None, Depends(signed_in)]


def _page(
    request: Request, name: str, context: dict[str, Any], *, status_code: int = 200
) -> Response:
    return render(request, name, context, status_code=status_code, headers=LINK_HEADERS)


def _message(
    request: Request,
    heading: str,
    message: str,
    *,
    status_code: int = 200,
    action: dict[str, str] | None = None,
) -> Response:
    return _page(
        request,
        "team_message.html",
        {"heading": heading, "message": message, "failed": status_code >= 400, "action": action},
        status_code=status_code,
    )


def _refused(request: Request, error: AppError, heading: str) -> Response:
    return _message(request, heading, error.message, status_code=error.status)


def _invitation_path(token: str) -> str:
    return f"/dashboard/invitations/{token}"


def _joined(request: Request, team: Team) -> Response:
    return _message(
        request,
        f"You joined {team.name}",
        "You are now a member of the team: its workflows wait for you in the dashboard.",
        action={"label": "Open the dashboard", "url": "/dashboard"},
    )


async def _invitation_view(db: Database, token: str) -> tuple[Invitation, dict[str, Any]]:
    """The open invitation of a link and what its page shows about it."""
    async with db.read() as session:
        invitation = await service.open_invitation(session, token)
        team = await session.get(Team, invitation.team_id)
        inviter = await session.get(User, invitation.invited_by) if invitation.invited_by else None
        account = await auth_repository.get_user_by_email(session, invitation.email)
    assert team is not None  # the invitation's foreign key
    return invitation, {
        "invitation": invitation,
        "team_name": team.name,
        "inviter": (inviter.name or inviter.email) if inviter else None,
        "has_account": account is not None,
        "path": _invitation_path(token),
        "login_url": f"/dashboard/login?next={quote(_invitation_path(token))}",
        "min_password": MIN_PASSWORD_LENGTH,
        "email": None,
        "error": None,
        "code": None,
    }


@router.get("/invitations/{token}")
async def invitation_page(token: str, request: Request, db: DB, visitor: Visitor) -> Response:
    """The invitation link, by who opens it. Signed in as the invited address: a "Join" button.
    Signed in as another address: a clear refusal (403) and a button to sign out. Not signed
    in: sign in when the address has an account (the login page comes back here), else choose
    a password, and the new account joins the team at once."""
    try:
        invitation, context = await _invitation_view(db, token)
    except AppError as error:
        return _refused(request, error, "This invitation can't be used")
    status_code = 200
    if visitor is None:
        context["state"] = "signin" if context["has_account"] else "signup"
    else:
        context["state"] = "join"
        context["email"] = visitor[1].email
        try:
            async with db.read() as session:
                await service.check_acceptable(session, invitation, visitor[1])
        except AppError as error:
            context.update(state="refused", error=error.message, code=error.error_code)
            status_code = error.status
    return _page(request, "invite_accept.html", context, status_code=status_code)


@router.post("/invitations/{token}/accept")
async def accept_invitation(
    token: str, request: Request, db: DB, settings: Config, visitor: Visitor
) -> Response:
    if visitor is None:
        login = f"/dashboard/login?next={quote(_invitation_path(token))}"
        return RedirectResponse(login, status_code=303, headers=LINK_HEADERS)
    try:
        # The cookie says who joins: a page of another site must not make that choice.
        await verify_session_csrf(request, settings)
        async with db.write() as session:
            invitation = await service.open_invitation(session, token)
            user = await session.get(User, visitor[1].id)
            assert user is not None  # users are never deleted
            team = await service.accept(
                session, invitation, user, user_agent=request.headers.get("user-agent")
            )
    except AppError as error:
        return _refused(request, error, "This invitation can't be accepted")
    return _joined(request, team)


@router.post("/invitations/{token}/signup", dependencies=[Depends(verify_same_origin)])
async def signup_and_accept(
    token: str,
    request: Request,
    db: DB,
    settings: Config,
    password: Annotated[str, Form(max_length=1024)],
    name: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    try:
        if len(password) < MIN_PASSWORD_LENGTH:
            raise Unprocessable(
                f"Choose a password of at least {MIN_PASSWORD_LENGTH} characters.",
                code=ErrorCode.PASSWORD_TOO_SHORT,
            )
        password_hash = await hash_password(settings, password)  # before the write: CPU
        async with db.write() as session:
            user, team = await service.accept_with_signup(
                session,
                settings,
                token,
                password_hash=password_hash,
                name=name,
                user_agent=request.headers.get("user-agent"),
            )
            session_token = await auth_service.create_session(session, settings, user)
    except AppError as error:
        try:
            _invitation, context = await _invitation_view(db, token)
        except AppError as link_error:
            return _refused(request, link_error, "This invitation can't be used")
        context.update(state="signin" if context["has_account"] else "signup", error=error.message)
        return _page(request, "invite_accept.html", context, status_code=error.status)
    response = _joined(request, team)
    set_session_cookie(response, settings, session_token)
    return response


@router.post("/invitations/{token}/switch-account")
async def switch_account(
    token: str, request: Request, db: DB, settings: Config, visitor: Visitor
) -> Response:
    """Sign out (the invitation is for another address) and come back to the invitation.

    Signing out is a change the cookie authenticates, so it needs the CSRF token: other sites
    cannot sign people out through this. Signed out already, it just goes back to the page.
    """
    response = RedirectResponse(_invitation_path(token), status_code=303, headers=LINK_HEADERS)
    if visitor is not None:
        try:
            await verify_session_csrf(request, settings)
        except AppError as error:
            return _refused(request, error, "You are still signed in")
        async with db.write() as session:
            await auth_service.revoke_session(session, visitor[0].id)
        response.delete_cookie(
            SESSION_COOKIE, path="/", httponly=True, samesite="lax", secure=settings.secure_cookies
        )
    return response


# -- email verification ------------------------------------------------------------------------


def _verify_path(token: str) -> str:
    return f"/dashboard/verify-email/{token}"


def _verified(request: Request, email: str) -> Response:
    return _message(
        request,
        "Your address is verified",
        f"Thank you: {email} is verified, so Signoff can send you plans to approve and the "
        "results of runs.",
        action={"label": "Open the dashboard", "url": "/dashboard"},
    )


def _verify_refused(request: Request, error: AppError, token: str) -> Response:
    # An expired link offers a fresh one: whoever holds it received it at that address.
    action = (
        {"label": "Send me a new link", "url": f"{_verify_path(token)}/resend", "method": "post"}
        if error.error_code == "verification_expired"
        else None
    )
    return _message(
        request,
        "This link can't be used",
        error.message,
        status_code=error.status,
        action=action,
    )


@router.get("/verify-email/{token}")
async def verify_page(token: str, request: Request, db: DB) -> Response:
    try:
        async with db.read() as session:
            _verification, user = await verification.check_link(session, token)
    except AppError as error:
        return _verify_refused(request, error, token)
    if user.email_verified_at is not None:
        return _verified(request, user.email)
    return _page(
        request, "verify_email.html", {"email": user.email, "action_url": _verify_path(token)}
    )


@router.post("/verify-email/{token}")
async def verify_submit(token: str, request: Request, db: DB) -> Response:
    try:
        async with db.write() as session:
            user = await verification.verify(session, token)
    except AppError as error:
        return _verify_refused(request, error, token)
    return _verified(request, user.email)


@router.post("/verify-email/{token}/resend")
async def verify_resend(token: str, request: Request, db: DB, settings: Config) -> Response:
    try:
        async with db.write() as session:
            emailed = await verification.resend_for_link(session, settings, token)
    except AppError as error:
        return _message(request, "No new link was sent", error.message, status_code=error.status)
    return _message(
        request,
        "A new link is on its way",
        f"We sent a new verification link to {emailed}; it is valid for "
        f"{verification.VERIFICATION_TTL.days} days.",
    )
