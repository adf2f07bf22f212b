"""FastAPI dependencies that identify the caller, and the browser cookies that carry it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession

from signoff.auth import service
from signoff.auth.csrf import verify_csrf
from signoff.auth.service import AuthContext
from signoff.config import Settings
from signoff.dependencies import DB, Config
from signoff.errors import Unauthorized

SESSION_COOKIE = "signoff_session"
# The team a browser chose in the dashboard's team switcher (X-Team-Id for the API).
TEAM_COOKIE = "signoff_team"


def set_session_cookie(response: Response, settings: Settings, token: str) -> None:
    set_browser_cookie(response, settings, SESSION_COOKIE, token)


def clear_session_cookie(response: Response, settings: Settings) -> None:
    response.delete_cookie(
        SESSION_COOKIE, path="/", httponly=True, samesite="lax", secure=settings.secure_cookies
    )


def set_browser_cookie(response: Response, settings: Settings, name: str, value: str) -> None:
    """A cookie that lives as long as a session: HTTP only, same-site lax, secure over https."""
    response.set_cookie(
        name,
        value,
        max_age=settings.session_days * 86400,
        httponly=True,
        samesite="lax",
        secure=settings.secure_cookies,
        path="/",
    )


_bearer = HTTPBearer(auto_error=False, description="A session token from signup or login.")


def session_token(request: Request, credentials: HTTPAuthorizationCredentials | None) -> str | None:
    """The session token from ``Authorization: Bearer`` or, failing that, the session cookie."""
    if request.headers.get("authorization"):
        if credentials is None or credentials.scheme.lower() != "bearer":
            raise Unauthorized("Send the session token as 'Authorization: Bearer <token>'.")
        return credentials.credentials
    return request.cookies.get(SESSION_COOKIE)


def caller_token(request: Request) -> str | None:
    """The session token a request carries, once :data:`Auth` has accepted it: the Bearer
    token, else the session cookie."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return request.cookies.get(SESSION_COOKIE)


async def current_session_id(
    request: Request,
    db: DB,
    settings: Config,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> str:
    """The caller's live session, whether or not they are in a team (signing out needs none)."""
    token = session_token(request, credentials)
    if not token:
        raise Unauthorized("Sign in first: this needs a session token.")
    async with db.read() as session:
        auth_session, _user = await service.session_user(session, token)
    if credentials is None:
        await verify_csrf(request, settings, token)
    return auth_session.id


def _required_token(request: Request, credentials: HTTPAuthorizationCredentials | None) -> str:
    token = session_token(request, credentials)
    if not token:
        raise Unauthorized("Sign in first: this needs a session token.")
    return token


async def _browser_checks(
    request: Request,
    settings: Settings,
    credentials: HTTPAuthorizationCredentials | None,
    token: str,
    x_team_id: str | None,
    auth: AuthContext,
) -> AuthContext:
    if credentials is None:
        # The browser sent the cookie by itself: a state change must prove it came from our page.
        await verify_csrf(request, settings, token)
        if x_team_id is None:
            auth = auth.in_team(request.cookies.get(TEAM_COOKIE))
    return auth


async def current_auth(
    request: Request,
    db: DB,
    settings: Config,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    x_team_id: Annotated[str | None, Header(description="Act in this team.")] = None,
) -> AuthContext:
    token = _required_token(request, credentials)
    async with db.read() as session:
        auth = await service.resolve(session, token, x_team_id)
    return await _browser_checks(request, settings, credentials, token, x_team_id, auth)


@dataclass(frozen=True)
class Reading:
    """The caller (as :data:`Auth` checks them) and the read transaction that checked them."""

    auth: AuthContext
    session: AsyncSession


async def read_as_caller(
    request: Request,
    db: DB,
    settings: Config,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    x_team_id: Annotated[str | None, Header(description="Act in this team.")] = None,
) -> AsyncIterator[Reading]:
    """:data:`Auth` for a read-only endpoint, whose reads then share the session check's
    transaction: one connection checkout, BEGIN and ROLLBACK per request instead of two."""
    token = _required_token(request, credentials)
    async with db.read() as session:
        auth = await service.resolve(session, token, x_team_id)
        auth = await _browser_checks(request, settings, credentials, token, x_team_id, auth)
        yield Reading(auth, session)


async def verify_session_csrf(request: Request, settings: Settings) -> None:
    """For a page whose action a signed-out visitor may take too, because the token in its
    link is the authority (email links, invitations): call it when the session cookie
    authenticates the action (who joins, who signs out, who decided). A state change that the
    cookie authenticates then needs the CSRF token like any other (403 ``csrf_failed``)."""
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        await verify_csrf(request, settings, token)


async def optional_auth(
    request: Request,
    db: DB,
) -> AuthContext | None:
    """The caller's session if a valid one came with the request, else None (never an error)."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    async with db.read() as session:
        try:
            return await service.resolve(session, token, None)
        except Unauthorized:
            return None


Auth = Annotated[AuthContext, Depends(current_auth)]
# The transaction ends when the endpoint returns, before its answer is sent.
AuthRead = Annotated[Reading, Depends(read_as_caller, scope="function")]
CallerSession = Annotated[str, Depends(current_session_id)]
