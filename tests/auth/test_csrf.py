"""CSRF on the cookie-authenticated API: a browser's cookie alone cannot change anything."""

from __future__ import annotations

import httpx
import pytest

from signoff.auth.dependencies import SESSION_COOKIE
from signoff.db import Database
from signoff.models import Run
from tests.support.accounts import PASSWORD, signup
from tests.support.db import count
from tests.support.pages import csrf_of
from tests.support.workflows import GOAL

pytestmark = pytest.mark.postgres


async def test_a_cookie_authenticated_post_needs_the_csrf_header(
    client: httpx.AsyncClient, database: Database
) -> None:
    account = await signup(client)
    created = await client.post("/api/workflows", json={"goal": GOAL}, headers=account.headers)
    workflow_id = created.json()["workflowId"]
    activated = await client.post(f"/api/workflows/{workflow_id}/activate", headers=account.headers)
    first = activated.json()["workflowRuns"][0]["id"]
    await client.post(f"/api/workflows/{workflow_id}/runs/{first}/stop", headers=account.headers)
    assert await count(database, Run) == 1

    login = await client.post(
        "/api/auth/login", json={"email": account.email, "password": PASSWORD}
    )
    assert login.status_code == 200
    assert client.cookies.get(SESSION_COOKIE)
    path = f"/api/workflows/{workflow_id}/run"

    missing = await client.post(path)
    assert missing.status_code == 403
    assert missing.json()["code"] == "csrf_failed"
    wrong = await client.post(path, headers={"X-CSRF-Token": "0" * 64})
    assert wrong.status_code == 403
    assert await count(database, Run) == 1

    # A safe method needs no token; the dashboard pages carry the right one.
    page = await client.get("/dashboard", headers={"Accept": "text/html"})
    token = csrf_of(page.text)
    started = await client.post(path, headers={"X-CSRF-Token": token})
    assert started.status_code == 201, started.text
    assert await count(database, Run) == 2

    # Bearer requests carry no cookie of the browser's: they need no token.
    await client.post(
        f"/api/workflows/{workflow_id}/runs/{started.json()['runId']}/stop",
        headers={"X-CSRF-Token": token},
    )
    client.cookies.clear()
    by_bearer = await client.post(path, headers=account.headers)
    assert by_bearer.status_code == 201
    assert await count(database, Run) == 3


async def test_the_token_belongs_to_its_session(client: httpx.AsyncClient) -> None:
    account = await signup(client)
    tokens = []
    for _ in range(2):
        await client.post("/api/auth/login", json={"email": account.email, "password": PASSWORD})
        tokens.append(
            csrf_of((await client.get("/dashboard", headers={"Accept": "text/html"})).text)
        )
    assert tokens[0] != tokens[1]
    # The second session's cookie with the first session's token is refused.
    refused = await client.post("/api/auth/logout", headers={"X-CSRF-Token": tokens[0]})
    assert refused.status_code == 403
    ended = await client.post("/api/auth/logout", headers={"X-CSRF-Token": tokens[1]})
    assert ended.status_code == 204
