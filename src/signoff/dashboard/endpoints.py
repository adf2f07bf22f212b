"""Dashboard pages (server-rendered). Sign-in uses the same session cookie as the API."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from signoff.auth import repository as auth_repository
from signoff.auth import service as auth_service
from signoff.auth.dependencies import optional_auth
from signoff.auth.endpoints import set_session_cookie
from signoff.auth.service import AuthContext
from signoff.config import Settings, get_settings
from signoff.dashboard.pages import render
from signoff.db import Database, get_db
from signoff.errors import NotFound, TooManyRequests
from signoff.scheduling.cron import describe
from signoff.workflows import repository as workflow_repository
from signoff.workflows import service as workflow_service

router = APIRouter(prefix="/dashboard", include_in_schema=False)

DB = Annotated[Database, Depends(get_db)]
Config = Annotated[Settings, Depends(get_settings)]
MaybeAuth = Annotated[AuthContext | None, Depends(optional_auth)]


def _safe_next(target: str | None) -> str:
    # Only our own pages: never an open redirect to another site.
    if target and target.startswith("/dashboard") and not target.startswith("//"):
        return target
    return "/dashboard"


def _to_login(request: Request) -> Response:
    return RedirectResponse(f"/dashboard/login?next={quote(request.url.path)}", status_code=303)


@router.get("/login")
async def login_page(request: Request, next: str | None = None) -> Response:
    return render(request, "login.html", {"next": _safe_next(next), "error": None})


@router.post("/login")
async def login_submit(
    request: Request,
    db: DB,
    settings: Config,
    email: Annotated[str, Form()],
    password: Annotated[str, Form()],
    next: Annotated[str | None, Form()] = None,
) -> Response:
    target = _safe_next(next)
    email = email.strip().lower()
    try:
        async with db.write() as session:
            user = await auth_service.authenticate(
                session, settings, email=email, password=password
            )
            token = await auth_service.create_session(session, settings, user) if user else None
    except TooManyRequests as error:
        return render(
            request, "login.html", {"next": target, "error": error.message}, status_code=429
        )
    if token is None:
        return render(
            request,
            "login.html",
            {"next": target, "error": "Wrong email or password."},
            status_code=401,
        )
    response = RedirectResponse(target, status_code=303)
    set_session_cookie(response, settings, token)
    return response


@router.get("")
async def home(request: Request, auth: MaybeAuth, db: DB) -> Response:
    if auth is None:
        return _to_login(request)
    async with db.read() as session:
        rows = await workflow_repository.list_for_team(session, auth.current_team_id)
    return render(request, "workflows.html", {"auth": auth, "rows": rows})


@router.get("/workflows/{workflow_id}")
async def workflow_page(workflow_id: str, request: Request, auth: MaybeAuth, db: DB) -> Response:
    if auth is None:
        return _to_login(request)
    try:
        async with db.read() as session:
            workflow = await workflow_service.get_visible(session, auth, workflow_id)
            members = await auth_repository.list_team_members(session, workflow.team_id)
    except NotFound:
        return render(request, "not_found.html", {"auth": auth}, status_code=404)
    return render(
        request,
        "workflow.html",
        {
            "auth": auth,
            "workflow": workflow,
            "steps": workflow.steps,
            "schedule_description": describe(workflow.schedule) if workflow.schedule else None,
            "member_count": len(members),
        },
    )
