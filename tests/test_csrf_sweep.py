"""CSRF, swept over every state-changing route of the application (docs/security.md).

Every POST, PUT, PATCH and DELETE route is taken from ``app.routes``, so a route added later
is swept without touching this file. Each is sent as a browser signed in with a valid session
cookie but no CSRF token, with real ids and a plausible body, and must answer 403
``csrf_failed`` (JSON) or the page saying the form did not come from Signoff (HTML), and change
nothing. The routes that never read the session cookie are in ``COOKIE_UNUSED``, each with its
reason; the sign-in and sign-up forms among them are refused when they come from another site.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from sqlalchemy import func, select

from signoff.auth import service as auth_service
from signoff.config import Settings
from signoff.db import Database
from signoff.models import (
    AuthSession,
    Invitation,
    Membership,
    MemoryEntry,
    Role,
    Run,
    User,
    Workflow,
)
from tests.support.accounts import BROWSER, PASSWORD, as_browser, join, signup, signup_into
from tests.support.workflows import create_workflow, paused_run

UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
SAME_ORIGIN = "the cookie is not read; a form from another site is refused (verify_same_origin)"
COOKIE_UNUSED: dict[tuple[str, str], str] = {
    ("POST", "/api/auth/signup"): "creates an account and a session; the cookie is not read",
    ("POST", "/api/auth/login"): "turns credentials into a session; the cookie is not read",
    ("POST", "/dashboard/login"): "the sign-in form: " + SAME_ORIGIN,
    ("POST", "/dashboard/signup"): "the sign-up form: " + SAME_ORIGIN,
    ("POST", "/dashboard/invitations/{token}/signup"): (
        "creates the invited account from the link's token: " + SAME_ORIGIN
    ),
    ("POST", "/dashboard/verify-email/{token}"): (
        "the emailed token verifies its own address; the cookie is not read"
    ),
    ("POST", "/dashboard/verify-email/{token}/resend"): (
        "mails a new link to the address of the emailed token; the cookie is not read"
    ),
}
# Bodies that would succeed with the token, so a 403 is about the token alone.
BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "/api/workflows"): {"goal": "Write a post about our spring launch"},
    ("PATCH", "/api/workflows/{workflow_id}"): {"schedule": "0 9 * * MON"},
    ("POST", "/api/workflows/{workflow_id}/runs/{run_id}/decision"): {"action": "approve"},
    ("PUT", "/api/memory/{key}"): {"value": "Warm, plain words."},
    ("PATCH", "/api/teams/{team_id}/members/{user_id}"): {"role": "admin"},
    ("POST", "/api/teams/{team_id}/invitations"): {"email": "new@example.com", "role": "member"},
    ("POST", "/dashboard/workflows"): {"goal": "Write a post about our spring launch"},
    ("POST", "/dashboard/workflows/{workflow_id}/runs/{run_id}/decision"): {"action": "approve"},
    ("POST", "/dashboard/team/invitations"): {"email": "new@example.com", "role": "member"},
    ("POST", "/dashboard/team/members/{user_id}/role"): {"role": "admin"},
    ("POST", "/dashboard/team/switch"): {"team_id": "{other_team_id}"},
    ("POST", "/dashboard/memory/core"): {"value": "Warm, plain words."},
}
PARAM = re.compile(r"{(\w+)}")
CSRF_PAGE = "did not come from Signoff"


def unsafe_routes(app: FastAPI) -> list[tuple[str, str]]:
    routes = set()
    for context in iter_route_contexts(app.routes):
        if isinstance(context.original_route, APIRoute):
            assert context.path is not None
            routes.update((m, context.path) for m in (context.methods or ()) if m in UNSAFE)
    return sorted(routes, key=lambda route: (route[1], route[0]))


def refused_for_csrf(response: httpx.Response) -> bool:
    if response.status_code != 403:
        return False
    if response.headers.get("content-type", "").startswith("application/json"):
        return bool(response.json().get("code") == "csrf_failed")
    return CSRF_PAGE in response.text


async def state(database: Database) -> dict[str, Any]:
    """What a forged request could change: rows, statuses, roles, signed-out sessions."""
    async with database.read() as session:
        return {
            "workflows": (await session.execute(select(Workflow.id, Workflow.status))).all(),
            "runs": (await session.execute(select(Run.id, Run.status))).all(),
            "members": (await session.execute(select(Membership.user_id, Membership.role))).all(),
            "memory": (await session.execute(select(MemoryEntry.key, MemoryEntry.value))).all(),
            "invitations": await session.scalar(select(func.count()).select_from(Invitation)),
            "revoked_sessions": await session.scalar(
                select(func.count()).where(AuthSession.revoked_at.is_not(None))
            ),
        }


async def test_every_cookie_authenticated_change_needs_the_csrf_token(
    app: FastAPI, client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    owner = await signup(client)
    member = await signup_into(client, database, owner.team_id, Role.MEMBER)
    other_team = (await signup(client)).team_id
    await join(database, other_team, owner, Role.MEMBER)  # somewhere to switch to
    run = await paused_run(client, owner)
    draft = await create_workflow(client, owner)
    put = await client.put("/api/memory/note", json={"value": "Kept."}, headers=owner.headers)
    assert put.status_code == 200
    invited = await client.post(
        f"/api/teams/{owner.team_id}/invitations",
        json={"email": "invitee@example.com", "role": "member"},
        headers=owner.headers,
    )
    assert invited.status_code == 201
    values = {
        "workflow_id": run["workflowId"],
        "run_id": str(run["id"]),
        "team_id": owner.team_id,
        "user_id": member.user_id,
        "invitation_id": invited.json()["id"],
        "key": "note",
        "token": "an-emailed-token",
        "asset_id": "an-asset",
        "other_team_id": other_team,
    }
    del draft  # exists so the team has a draft too; the run's workflow is the one acted on

    def fill(text: str) -> str:
        return PARAM.sub(lambda match: values.get(match.group(1), "unknown"), text)

    before = await state(database)
    answers: list[str] = []
    wrong: list[str] = []
    routes = unsafe_routes(app)
    for method, path in routes:
        # A session of its own for each request, so that one route's change (signing out, say)
        # cannot make another's answer: a valid cookie, and no Authorization header.
        async with database.write() as session:
            user = await session.get(User, owner.user_id)
            assert user is not None
            token = await auth_service.create_session(session, settings, user)
        as_browser(client, replace(owner, token=token))
        body = {name: fill(value) for name, value in BODIES.get((method, path), {}).items()}
        headers = {"User-Agent": BROWSER, "Accept": "text/html"}
        if path.startswith("/api/") and not path.startswith("/api/workflows/resume"):
            headers["Accept"] = "application/json"
            response = await client.request(method, fill(path), json=body, headers=headers)
        else:
            response = await client.request(method, fill(path), data=body, headers=headers)
        answer = f"{method} {path} -> {response.status_code}"
        if (method, path) in COOKIE_UNUSED:
            answers.append(f"{answer} (cookie not used: {COOKIE_UNUSED[method, path]})")
            continue
        answers.append(answer)
        if not refused_for_csrf(response):
            wrong.append(
                f"{method} {path} answered {response.status_code} to a session cookie without "
                f"a CSRF token, not 403 csrf_failed: {response.text[:160]!r}"
            )
    print("\n".join(["Swept routes:", *answers]))
    assert not wrong, (
        "\n".join(wrong) + "\nA route that changes state for the session cookie must check the "
        "CSRF token: depend on Auth, PageAuth or CallerSession (signoff/auth/dependencies.py), "
        "or call verify_session_csrf on a link page. A route that never reads the cookie goes "
        "in COOKIE_UNUSED in tests/test_csrf_sweep.py, with the reason."
    )
    assert await state(database) == before, "a request without its CSRF token changed something"
    stale = set(COOKIE_UNUSED) - set(routes)
    assert not stale, f"COOKIE_UNUSED names routes that no longer exist: {stale}"


async def test_the_sign_in_and_sign_up_forms_refuse_another_site(
    client: httpx.AsyncClient, database: Database
) -> None:
    account = await signup(client)
    cross_site = {"Sec-Fetch-Site": "cross-site", "Accept": "text/html"}
    forms = {
        "/dashboard/login": {"email": account.email, "password": PASSWORD},
        "/dashboard/signup": {"email": "new@example.com", "password": PASSWORD},
        "/dashboard/invitations/an-emailed-token/signup": {"password": PASSWORD},
    }
    for path, data in forms.items():
        response = await client.post(path, data=data, headers=cross_site)
        assert response.status_code == 403, (path, response.text)
        assert "did not come from Signoff" in response.text, path
