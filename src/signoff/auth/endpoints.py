"""Signup, login, logout and ``/api/me``."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, status

from signoff.auth import repository, service
from signoff.auth.csrf import csrf_token
from signoff.auth.dependencies import (
    Auth,
    CallerSession,
    caller_token,
    clear_session_cookie,
    set_session_cookie,
)
from signoff.auth.passwords import hash_password
from signoff.auth.schemas import (
    AuthResponse,
    LoginRequest,
    MeResponse,
    SignupRequest,
    TeamMembershipOut,
    TeamOut,
    UserOut,
)
from signoff.dependencies import DB, Client, Config
from signoff.errors import ErrorCode, NotFound, Unauthorized
from signoff.kit.openapi import errors
from signoff.models import Team, User

router = APIRouter(prefix="/api", tags=["accounts"])


def user_out(user: User) -> UserOut:
    return UserOut(
        id=user.id,
        email=user.email,
        name=user.name,
        email_verified=user.email_verified_at is not None,
        created_at=user.created_at,
    )


@router.post(
    "/auth/signup",
    status_code=status.HTTP_201_CREATED,
    operation_id="signup",
    summary="Create an account",
    responses=errors(409),
)
async def signup(body: SignupRequest, response: Response, db: DB, settings: Config) -> AuthResponse:
    """Create an account and its own team (you are the owner), and sign in. An email with a
    link to verify the address goes out: in production, workflow emails need it."""
    password_hash = await hash_password(settings, body.password)  # before the write: CPU
    async with db.write() as session:
        user, team = await service.signup(
            session, settings, email=body.email, password_hash=password_hash, name=body.name
        )
        token = await service.create_session(session, settings, user)
    set_session_cookie(response, settings, token)
    return AuthResponse(user=user_out(user), team=TeamOut(id=team.id, name=team.name), token=token)


@router.post(
    "/auth/login",
    operation_id="login",
    summary="Sign in",
    responses=errors(401, 404, 429),
)
async def login(
    body: LoginRequest, response: Response, db: DB, settings: Config, client: Client
) -> AuthResponse:
    """Sign in. Wrong credentials answer 401 without saying which part was wrong. Failed
    attempts are throttled per address and client and per client (429 with `Retry-After`); an
    address under attack is answered more slowly, never refused to a client without failures."""
    signed_in = await service.authenticate(
        db, settings, email=body.email, password=body.password, client=client
    )
    # Raised after the commit, so the failed attempt is counted.
    if signed_in is None:
        raise Unauthorized("Wrong email or password.", code=ErrorCode.INVALID_CREDENTIALS)
    user, token = signed_in.user, signed_in.token
    async with db.read() as session:
        memberships = await repository.list_memberships(session, user.id)
    if not memberships:
        raise NotFound("You do not belong to any team.", code=ErrorCode.NO_TEAM)
    team: Team = memberships[0][0]
    set_session_cookie(response, settings, token)
    return AuthResponse(user=user_out(user), team=TeamOut(id=team.id, name=team.name), token=token)


@router.post(
    "/auth/logout",
    status_code=status.HTTP_204_NO_CONTENT,
    operation_id="logout",
    summary="Sign out",
)
async def logout(session_id: CallerSession, db: DB, settings: Config) -> Response:
    """End this session everywhere: the token stops working at once."""
    async with db.write() as session:
        await service.revoke_session(session, session_id)
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    clear_session_cookie(response, settings)
    return response


@router.get("/me", operation_id="getMe", summary="Who you are")
async def me(auth: Auth, db: DB, settings: Config, request: Request) -> MeResponse:
    """The signed-in user, their teams with roles, and the team requests act in; and the
    CSRF token that a browser client using the session cookie sends back as `X-CSRF-Token`
    on every state-changing request."""
    # Auth resolved the session from this token a moment ago. (A Bearer client needs no CSRF
    # token; it gets the one of its session all the same.)
    token = caller_token(request)
    async with db.read() as session:
        user = await session.get(User, auth.user_id)
    assert user is not None  # resolved a moment ago; users are never deleted
    return MeResponse(
        user=user_out(user),
        teams=[
            TeamMembershipOut(id=team.team_id, name=team.team_name, role=team.role)
            for team in auth.teams
        ],
        current_team_id=auth.current_team_id,
        csrf_token=csrf_token(settings, token or ""),
    )
