"""Plan approval link safety (SPEC §6): scanners, HEAD, bad tokens, modes."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import jwt
import pytest
from fastapi import FastAPI

from signoff.approvals import tokens
from signoff.config import Settings
from signoff.db import Database
from signoff.kit.clock import FrozenClock
from signoff.models import Role, Workflow
from tests.support.accounts import BROWSER, Account, signup, signup_into
from tests.support.db import stored
from tests.support.links import plan_link
from tests.support.pages import csrf_of
from tests.support.workflows import create_workflow

pytestmark = pytest.mark.postgres

GOAL = "Write a LinkedIn post about our product launch"


async def status_of(database: Database, workflow_id: str) -> tuple[str, int]:
    workflow = await stored(database, Workflow, workflow_id)
    return workflow.status.value, workflow.plan_revision


async def draft(client: httpx.AsyncClient, account: Account) -> str:
    workflow_id: str = (await create_workflow(client, account, GOAL))["workflowId"]
    return workflow_id


@pytest.mark.parametrize(
    "user_agent",
    [
        "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
        "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
        "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)",
        "python-requests/2.32.3",
        "",
    ],
)
async def test_scanners_change_nothing(
    client: httpx.AsyncClient, database: Database, settings: Settings, user_agent: str
) -> None:
    workflow_id = await draft(client, await signup(client))
    link = plan_link(settings, workflow_id)
    response = await client.get(link, headers={"User-Agent": user_agent})
    assert response.status_code == 200
    assert response.json()["code"] == "ignored"
    head = await client.head(link, headers={"User-Agent": user_agent})
    assert head.status_code == 200
    assert await status_of(database, workflow_id) == ("draft", 1)


async def test_head_from_a_browser_changes_nothing_even_in_one_click_mode(
    client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    settings.link_mode = "one-click"
    workflow_id = await draft(client, await signup(client))
    head = await client.head(plan_link(settings, workflow_id), headers={"User-Agent": BROWSER})
    assert head.status_code == 200
    assert await status_of(database, workflow_id) == ("draft", 1)


async def test_one_click_mode_decides_on_get(
    client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    settings.link_mode = "one-click"
    workflow_id = await draft(client, await signup(client))
    link = plan_link(settings, workflow_id)
    bot = await client.get(link, headers={"User-Agent": "LinkedInBot/1.0"})
    assert bot.status_code == 200
    assert await status_of(database, workflow_id) == ("draft", 1)
    response = await client.get(link, headers={"User-Agent": BROWSER})
    assert response.status_code == 303
    assert response.headers["location"] == f"/dashboard/workflows/{workflow_id}"
    assert await status_of(database, workflow_id) == ("active", 1)


async def test_confirm_mode_get_from_a_browser_does_not_decide(
    client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    workflow_id = await draft(client, await signup(client))
    response = await client.get(plan_link(settings, workflow_id), headers={"User-Agent": BROWSER})
    assert response.status_code == 200
    assert "POST" in response.json()["message"]
    assert await status_of(database, workflow_id) == ("draft", 1)


async def test_a_member_session_does_not_make_get_decide(
    client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    owner = await signup(client)
    member = await signup_into(client, database, owner.team_id, Role.MEMBER)
    workflow_id = await draft(client, owner)
    client.cookies.set("signoff_session", member.token)
    response = await client.get(
        plan_link(settings, workflow_id), headers={"User-Agent": BROWSER, "Accept": "text/html"}
    )
    assert response.status_code == 200
    assert "Approve &amp; Activate" in response.text
    assert await status_of(database, workflow_id) == ("draft", 1)
    # With a session, the POST is that person's decision: it needs the session's CSRF token,
    # which the confirm page carries.
    html = {"User-Agent": BROWSER, "Accept": "text/html"}
    forged = await client.post(plan_link(settings, workflow_id), headers=html)
    assert forged.status_code == 403
    assert "did not come from Signoff" in forged.text
    assert await status_of(database, workflow_id) == ("draft", 1)
    approved = await client.post(
        plan_link(settings, workflow_id),
        data={"csrf_token": csrf_of(response.text)},
        headers=html,
    )
    assert approved.status_code == 303
    assert (await status_of(database, workflow_id))[0] == "active"


def _forge(settings: Settings, claims: dict[str, Any], *, key: str | None = None) -> str:
    base = {"iat": 1, "exp": 4_102_444_800, "jti": "x", "type": "plan_approval"}
    return jwt.encode({**base, **claims}, key or settings.secret_key(), algorithm="HS256")


def _alg_none(claims: dict[str, Any]) -> str:
    import base64
    import json

    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    body = {"iat": 1, "exp": 4_102_444_800, "jti": "x", "type": "plan_approval", **claims}
    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(body)}."


async def test_bad_tokens_are_400_with_a_reason_and_change_nothing(
    client: httpx.AsyncClient, database: Database, settings: Settings, clock: FrozenClock
) -> None:
    account = await signup(client)
    workflow_id = await draft(client, account)
    other_id = await draft(client, account)
    good = tokens.issue_plan_token(settings, workflow_id=workflow_id, revision=1)
    header, payload, signature = good.split(".")
    tampered = f"{header}.{payload}.{signature[:-4]}AAAA"
    step_token = tokens.issue(
        settings,
        "step_approval",
        {"workflowId": workflow_id, "runId": 1, "stepIndex": 0, "attempt": 1},
        tokens.step_link_ttl(settings),
    )
    cases = {
        "link_invalid": [
            tampered,
            _alg_none({"workflowId": workflow_id, "revision": 1}),
            _forge(settings, {"workflowId": workflow_id, "revision": 1}, key="w" * 40),
            tokens.issue_plan_token(settings, workflow_id=other_id, revision=1),
            "",
            "not.a.jwt",
        ],
        "link_wrong_type": [step_token],
    }
    for code, bad_tokens in cases.items():
        for bad in bad_tokens:
            for method in ("GET", "POST"):
                response = await client.request(
                    method,
                    f"/api/workflows/{workflow_id}/approve",
                    params={"token": bad},
                    headers={"User-Agent": BROWSER},
                )
                assert response.status_code == 400, (method, bad)
                assert response.json()["code"] == code, (method, bad)
                assert response.json()["error"]

    html = await client.post(
        f"/api/workflows/{workflow_id}/approve",
        params={"token": tampered},
        headers={"User-Agent": BROWSER, "Accept": "text/html"},
    )
    assert html.status_code == 400
    assert "text/html" in html.headers["content-type"]
    assert "altered" in html.text

    clock.advance(timedelta(hours=24))
    expired = await client.post(f"/api/workflows/{workflow_id}/approve", params={"token": good})
    assert expired.status_code == 400
    assert expired.json()["code"] == "link_expired"
    assert await status_of(database, workflow_id) == ("draft", 1)


async def test_a_link_from_before_a_plan_edit_is_refused(
    client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    account = await signup(client)
    workflow_id = await draft(client, account)
    old_link = plan_link(settings, workflow_id, revision=1)
    edit = await client.post(
        f"/api/workflows/{workflow_id}/steps",
        json={"steps": [{"description": "Answer in one line", "toolName": "llm_response"}]},
        headers=account.headers,
    )
    assert edit.status_code == 200, edit.text
    assert edit.json()["planRevision"] == 2
    refused = await client.post(old_link)
    assert refused.status_code == 400
    assert refused.json()["code"] == "plan_changed"
    assert await status_of(database, workflow_id) == ("draft", 2)
    accepted = await client.post(plan_link(settings, workflow_id, revision=2))
    assert accepted.status_code == 303
    assert await status_of(database, workflow_id) == ("active", 2)


async def test_concurrent_approvals_one_wins(
    app: FastAPI, client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    import asyncio

    workflow_id = await draft(client, await signup(client))
    link = plan_link(settings, workflow_id)
    responses = await asyncio.gather(*(client.post(link) for _ in range(8)))
    codes = sorted(response.status_code for response in responses)
    assert codes == [303] + [400] * 7
    assert {r.json()["code"] for r in responses if r.status_code == 400} == {"already_decided"}
