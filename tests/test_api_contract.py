"""Input that cannot be stored never reaches the database, on SQLite and PostgreSQL alike:
out-of-range integers, NUL characters and lone surrogates are a 422 naming the field; link
tokens with missing or mistyped claims, or issued in the future, are a 400; an over-long link
note is the same 400 on every route. And a cookie client gets its CSRF token from /api/me.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import httpx
import jwt
import pytest

from signoff.config import Settings
from signoff.kit.clock import utc_now
from tests.support.links import step_token

pytestmark = pytest.mark.postgres

BIG = str(2**63)
_emails = itertools.count()
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36"


async def _signup(client: httpx.AsyncClient) -> dict[str, str]:
    email = f"contract{next(_emails)}@example.com"
    response = await client.post(
        "/api/auth/signup", json={"email": email, "password": "correct horse battery"}
    )
    assert response.status_code == 201, response.text
    client.cookies.clear()
    return {"Authorization": f"Bearer {response.json()['token']}"}


async def _waiting_run(client: httpx.AsyncClient, headers: dict[str, str]) -> dict[str, Any]:
    """An active workflow whose first run waits for a step decision."""
    created = await client.post(
        "/api/workflows", headers=headers, json={"goal": "A weekly LinkedIn post on AI news"}
    )
    assert created.status_code == 201, created.text
    workflow_id = created.json()["workflowId"]
    activated = await client.post(f"/api/workflows/{workflow_id}/activate", headers=headers)
    run_id = activated.json()["workflowRuns"][0]["id"]
    for _ in range(500):
        run = await client.get(f"/api/workflows/{workflow_id}/runs/{run_id}", headers=headers)
        if run.json()["status"] == "awaiting_approval":
            return dict(run.json())
        await asyncio.sleep(0.02)
    raise AssertionError(f"the run never waited for approval: {run.json()['status']}")


async def _send(
    client: httpx.AsyncClient, method: str, url: str, body: Any, headers: dict[str, str]
) -> httpx.Response:
    # json.dumps escapes a lone surrogate as "\\ud800", as a client in another language may.
    return await client.request(
        method,
        url,
        content=json.dumps(body),
        headers={**headers, "Content-Type": "application/json"},
    )


def _field(response: httpx.Response) -> list[str]:
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["code"] == "validation_error"
    return [detail["field"] for detail in body["details"]]


async def test_integers_beyond_their_columns_are_422(client: httpx.AsyncClient) -> None:
    headers = await _signup(client)
    workflow = "00000000-0000-0000-0000-000000000000"
    for method, path in [
        ("GET", f"/api/workflows/{workflow}/runs/{BIG}"),
        ("POST", f"/api/workflows/{workflow}/runs/{BIG}/stop"),
        ("POST", f"/api/workflows/{workflow}/runs/{BIG}/approval-email"),
        ("GET", f"/api/workflows/{workflow}/runs/{2**31}"),
    ]:
        assert _field(await client.request(method, path, headers=headers)) == ["run_id"]
    for query, field in [({"runId": BIG}, "runId"), ({"offset": BIG}, "offset")]:
        assert _field(await client.get("/api/assets", params=query, headers=headers)) == [field]


async def test_cursors_are_decoded_defensively(client: httpx.AsyncClient) -> None:
    headers = await _signup(client)
    created = await client.post(
        "/api/workflows", headers=headers, json={"goal": "A weekly post about AI"}
    )
    workflow_id = created.json()["workflowId"]
    for cursor in ["²", "١٢", "-1", "0", "1e3", BIG, "99999999999", "x" * 30]:
        response = await client.get(
            f"/api/workflows/{workflow_id}/runs", params={"cursor": cursor}, headers=headers
        )
        assert _field(response) == ["cursor"], cursor
    page = await client.get(
        f"/api/workflows/{workflow_id}/runs", params={"cursor": "7"}, headers=headers
    )
    assert page.status_code == 200


@pytest.mark.parametrize("bad", ["\x00", "\ud800"], ids=["nul", "lone-surrogate"])
async def test_unstorable_text_in_any_body_string_is_422(
    client: httpx.AsyncClient, bad: str
) -> None:
    headers = await _signup(client)
    # Raw JSON, so a lone surrogate travels as the escape "\ud800" a client may send.
    goal = {"goal": f"Post about AI {bad} weekly"}
    response = await _send(client, "POST", "/api/workflows", goal, headers)
    assert _field(response) == ["goal"]
    created = await client.post("/api/workflows", headers=headers, json={"goal": "Weekly AI"})
    workflow_id = created.json()["workflowId"]
    steps = {
        "steps": [
            {
                "description": "Search",
                "toolName": "web_search",
                "toolInput": {"query": ["fine", {"deep": f"x{bad}"}]},
            }
        ]
    }
    response = await _send(client, "POST", f"/api/workflows/{workflow_id}/steps", steps, headers)
    assert _field(response) == ["steps.0.toolInput"]
    assert "toolInput" not in response.json()["details"][0]["message"]
    assert "query.1.deep" in response.json()["details"][0]["message"]
    memory = await _send(client, "PUT", "/api/memory/core", {"value": f"a{bad}"}, headers)
    assert _field(memory) == ["value"]
    account = {"email": "n@example.com", "password": "correct horse battery", "name": f"A{bad}"}
    signup = await _send(client, "POST", "/api/auth/signup", account, {})
    assert _field(signup) == ["name"]


async def test_nul_in_a_path_query_header_or_form_is_422(client: httpx.AsyncClient) -> None:
    headers = await _signup(client)
    assert _field(await client.get("/api/workflows/ab%00cd", headers=headers)) == ["workflow_id"]
    assert _field(await client.get("/api/memory/co%00re", headers=headers)) == ["key"]
    response = await client.get("/api/assets", params={"type": "re\x00port"}, headers=headers)
    assert _field(response) == ["type"]
    response = await client.get("/api/workflows", headers={**headers, "X-Team-Id": "a\x00b"})
    assert _field(response) == ["x-team-id"]
    response = await client.post(
        "/api/workflows/resume",
        params={"token": "t", "action": "reject"},
        data={"note": "too\x00bad"},
    )
    assert _field(response) == ["note"]


def _forge(settings: Settings, **claims: Any) -> str:
    now = int(utc_now().timestamp())
    payload = {"iat": now, "exp": now + 3600, "jti": "j" * 32, **claims}
    return jwt.encode(
        {key: value for key, value in payload.items() if value is not None},
        settings.secret_key(),
        algorithm="HS256",
    )


async def test_link_tokens_with_missing_or_mistyped_claims_are_400(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    headers = await _signup(client)
    run = await _waiting_run(client, headers)
    step = {
        "type": "step_approval",
        "workflowId": run["workflowId"],
        "runId": run["id"],
        "conversationId": run["conversationId"],
        "stepIndex": run["currentStepIndex"],
        "attempt": 1,
    }
    later = int((utc_now() + timedelta(hours=1)).timestamp())
    broken: list[dict[str, Any]] = [
        {"runId": None},
        {"runId": "1"},
        {"runId": str(run["id"])},
        {"runId": 2**63},
        {"runId": True},
        {"stepIndex": 1.5},
        {"attempt": None},
        {"conversationId": 7},
        {"workflowId": ["x"]},
        {"jti": "a\x00b"},
        {"exp": "9999999999"},
        {"exp": None},
        {"iat": later},
        {"nbf": later},
        {"type": 5},
    ]
    for change in broken:
        token = _forge(settings, **{**step, **change})
        for method in ("GET", "POST"):
            response = await client.request(
                method,
                "/api/workflows/resume",
                params={"token": token, "action": "approve"},
                headers={"User-Agent": BROWSER},
            )
            assert response.status_code == 400, (change, method, response.text)
            assert response.json()["code"] == "link_invalid", (change, response.json())
    plan = {"type": "plan_approval", "workflowId": run["workflowId"], "revision": 1}
    for change in [{"revision": "1"}, {"revision": None}, {"workflowId": 3}, {"nbf": later}]:
        token = _forge(settings, **{**plan, **change})
        response = await client.post(
            f"/api/workflows/{run['workflowId']}/approve", params={"token": token}
        )
        assert response.status_code == 400, (change, response.text)
        assert response.json()["code"] == "link_invalid"
    # The untouched claims still decide: the refusals above were about the claims.
    good = _forge(settings, **step)
    response = await client.post(
        "/api/workflows/resume", params={"token": good, "action": "approve"}
    )
    assert response.status_code == 303, response.text


async def test_an_over_long_note_is_the_same_400_on_every_route(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    headers = await _signup(client)
    run = await _waiting_run(client, headers)
    query = {"token": step_token(settings, run), "action": "reject"}
    long_note = "n" * 4001
    attempts = [
        ("GET", {"params": {**query, "note": long_note}}),
        ("POST", {"params": {**query, "note": long_note}}),
        ("POST", {"params": query, "data": {"note": long_note}}),
    ]
    for method, request in attempts:
        json_answer = await client.request(
            method, "/api/workflows/resume", headers={"User-Agent": BROWSER}, **request
        )
        assert json_answer.status_code == 400, (method, json_answer.text)
        assert json_answer.json()["code"] == "note_too_long"
        page = await client.request(
            method,
            "/api/workflows/resume",
            headers={"User-Agent": BROWSER, "Accept": "text/html"},
            **request,
        )
        assert page.status_code == 400
        assert page.headers["content-type"].startswith("text/html")
        assert "4,000 characters" in page.text
    # Nothing was decided; a note at the limit is accepted.
    response = await client.post(
        f"/api/workflows/resume?{urlencode(query)}", data={"note": "n" * 4000}
    )
    assert response.status_code == 303, response.text


async def test_a_cookie_client_gets_its_csrf_token_from_me(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/auth/signup",
        json={"email": "cookie@example.com", "password": "correct horse battery"},
    )
    assert response.status_code == 201
    assert "signoff_session" in client.cookies
    me = await client.get("/api/me")
    csrf = me.json()["csrfToken"]
    goal = {"goal": "A weekly LinkedIn post about AI news"}
    refused = await client.post("/api/workflows", json=goal)
    assert refused.status_code == 403
    assert refused.json()["code"] == "csrf_failed"
    accepted = await client.post("/api/workflows", json=goal, headers={"X-CSRF-Token": csrf})
    assert accepted.status_code == 201, accepted.text
