"""The seed flow up to activation, end to end: goal → plan → email → link → active."""

from __future__ import annotations

from email.message import EmailMessage
from typing import Any

import httpx
import pytest
from markupsafe import escape

from signoff.db import Database
from signoff.models import LinkDecision, Workflow
from tests.support.accounts import BROWSER, HTML, signup
from tests.support.db import count, stored
from tests.support.mailbox import links_in, text_of, wait_for_mail
from tests.support.smtp import FakeSmtpServer as SmtpServer
from tests.support.workflows import SEED_GOAL, create_workflow

pytestmark = pytest.mark.postgres


@pytest.fixture
def settings_overrides(smtp_server: SmtpServer) -> dict[str, Any]:
    return {"smtp_url": smtp_server.url, "mail_from": "Signoff <signoff@example.com>"}


def approve_link(message: EmailMessage) -> str:
    [found] = [url for url in links_in(message) if "/approve?token=" in url]
    return found


async def status_of(database: Database, workflow_id: str) -> str:
    return (await stored(database, Workflow, workflow_id)).status.value


async def test_seed_flow_through_real_smtp(
    client: httpx.AsyncClient, database: Database, smtp_server: SmtpServer
) -> None:
    owner = await signup(client, "owner@example.com", name="Olive")
    await wait_for_mail(smtp_server, 1)  # the verification email signup sends
    smtp_server.messages.clear()
    body = await create_workflow(client, owner, SEED_GOAL, schedule="0 9 * * MON")
    assert body["status"] == "draft"
    assert body["plannedBy"] == "offline"
    assert body["emailedTo"] == ["owner@example.com"]
    assert "offline" in body["message"]
    assert "owner@example.com" in body["message"]
    tools = [step["toolName"] for step in body["steps"]]
    assert tools[-2:] == ["generate_outline", "format_post"]
    workflow_id = body["workflowId"]

    [message] = await wait_for_mail(smtp_server, 1)
    assert message["To"] == "owner@example.com"
    assert body["title"] in message["Subject"]
    assert "Approve & Activate" in text_of(message)
    link = approve_link(message)

    # A person's browser, not signed in: a confirm page; nothing changes.
    page = await client.get(link, headers=HTML)
    assert page.status_code == 200
    assert "Approve &amp; Activate" in page.text
    for step in body["steps"]:
        assert str(escape(step["description"])) in page.text
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["referrer-policy"] == "no-referrer"
    assert await status_of(database, workflow_id) == "draft"

    decided = await client.post(link, headers=HTML)
    assert decided.status_code == 303
    assert decided.headers["location"] == f"/dashboard/workflows/{workflow_id}"
    assert await status_of(database, workflow_id) == "active"

    again = await client.post(link, headers=HTML)
    assert again.status_code == 400
    assert "already approved" in again.text
    again_get = await client.get(link, headers={"User-Agent": BROWSER})
    assert again_get.status_code == 400
    assert again_get.json()["code"] == "already_decided"
    assert await count(database, LinkDecision) == 1
    assert await status_of(database, workflow_id) == "active"
    # No second plan email. (The run the approval started may already have emailed
    # its first step approval; that race is the run's, not the plan's.)
    plan_mails = [m for m in smtp_server.messages if "workflow plan" in m["Subject"]]
    assert len(plan_mails) == 1

    # The page the approval redirects to shows the workflow to its team.
    client.cookies.set("signoff_session", owner.token)
    dashboard = await client.get(f"/dashboard/workflows/{workflow_id}")
    assert dashboard.status_code == 200
    assert body["title"] in dashboard.text
    assert "active" in dashboard.text
    assert SEED_GOAL in dashboard.text


async def test_signed_in_owner_decides_with_one_click(
    client: httpx.AsyncClient, database: Database, smtp_server: SmtpServer
) -> None:
    owner = await signup(client)
    await wait_for_mail(smtp_server, 1)  # the verification email signup sends
    smtp_server.messages.clear()
    created = await create_workflow(client, owner, SEED_GOAL)
    link = approve_link((await wait_for_mail(smtp_server, 1))[0])
    client.cookies.set("signoff_session", owner.token)
    response = await client.get(link, headers=HTML)
    assert response.status_code == 303
    assert await status_of(database, created["workflowId"]) == "active"
