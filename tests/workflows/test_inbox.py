"""The approvals inbox (GET /api/approvals), edit then approve through the API, the landing
notice of an email link's decision, and approval emails to every owner and admin."""

from __future__ import annotations

from typing import Any

import httpx
import jwt
import pytest
from sqlalchemy import select

from signoff.config import Settings
from signoff.db import Database
from signoff.models import OutboxMail, Role
from tests.support.accounts import HTML, signup, signup_into
from tests.support.links import step_link
from tests.support.workflows import create_workflow, paused_run, wait_for_run

pytestmark = pytest.mark.postgres


async def approvals(client: httpx.AsyncClient, headers: dict[str, str]) -> dict[str, Any]:
    response = await client.get("/api/approvals", headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_the_inbox_lists_what_waits_for_owners_and_admins_oldest_first(
    client: httpx.AsyncClient, database: Database
) -> None:
    owner = await signup(client)
    run = await paused_run(client, owner)
    draft = (await create_workflow(client, owner))["workflowId"]
    admin = await signup_into(client, database, owner.team_id, Role.ADMIN)
    member = await signup_into(client, database, owner.team_id, Role.MEMBER)
    stranger = await signup(client)

    found = await approvals(client, owner.headers)
    assert found["count"] == 2
    kinds = [(item["kind"], item["workflowId"]) for item in found["items"]]
    assert kinds == [("step", run["workflowId"]), ("plan", draft)]
    step = found["items"][0]
    assert step["runId"] == run["id"]
    assert step["editable"] is True
    assert step["step"]["output"] == run["steps"][run["currentStepIndex"]]["output"]
    assert [s["stepIndex"] for s in found["items"][1]["planSteps"]] == [0, 1]
    assert (await approvals(client, admin.headers_in(owner.team_id)))["count"] == 2
    # A member decides nothing; another team sees nothing of this one.
    assert await approvals(client, member.headers_in(owner.team_id)) == {"count": 0, "items": []}
    assert (await approvals(client, stranger.headers))["count"] == 0


async def test_edit_then_approve_by_api_keeps_the_text_exactly(
    client: httpx.AsyncClient, database: Database
) -> None:
    owner = await signup(client)
    run = await paused_run(client, owner)
    index = run["currentStepIndex"]
    model_text = run["steps"][index]["output"]
    url = f"/api/workflows/{run['workflowId']}/runs/{run['id']}/decision"
    edited = "  Spring is here.\r\n\n\tTabs, CRLF and “quotes” stay.  "

    refusals = [
        ({"action": "reject", "note": "x", "editedText": edited}, 422, "edit_not_allowed"),
        ({"action": "approve", "editedText": "x" * 3001}, 422, "edit_not_allowed"),
        ({"action": "approve", "editedText": "   "}, 422, "edit_not_allowed"),
        ({"action": "approve", "editedText": edited, "attempt": 2}, 409, "stale_attempt"),
    ]
    for body, status, code in refusals:
        response = await client.post(url, json=body, headers=owner.headers)
        assert (response.status_code, response.json()["code"]) == (status, code), body
    unchanged = await wait_for_run(client, owner, run["workflowId"], run["id"], "awaiting_approval")
    assert unchanged["steps"][index]["output"] == model_text

    response = await client.post(
        url, json={"action": "approve", "editedText": edited, "attempt": 1}, headers=owner.headers
    )
    assert response.status_code == 200, response.text
    done = await wait_for_run(client, owner, run["workflowId"], run["id"], "completed")
    assert done["steps"][index]["output"] == edited
    assert done["steps"][index]["modelOutput"] == model_text
    assets = await client.get(f"/api/assets?runId={run['id']}", headers=owner.headers)
    [post] = [asset for asset in assets.json() if asset["type"] == "social_post"]
    assert (post["status"], post["content"], post["data"]["text"]) == ("final", edited, edited)
    last = done["messages"][-1]
    assert last["role"] == "user"
    assert last["text"].startswith("Approved with edits")
    assert f"\n\n{edited}\n\n" in last["text"]


async def test_a_rejected_attempt_is_kept_for_the_diff(client: httpx.AsyncClient) -> None:
    owner = await signup(client)
    run = await paused_run(client, owner)
    index = run["currentStepIndex"]
    url = f"/api/workflows/{run['workflowId']}/runs/{run['id']}/decision"
    response = await client.post(
        url, json={"action": "reject", "note": "Shorter"}, headers=owner.headers
    )
    assert response.status_code == 200
    again = await wait_for_run(client, owner, run["workflowId"], run["id"], "awaiting_approval")
    assert again["steps"][index]["previousOutput"] == run["steps"][index]["output"]
    inbox = await approvals(client, owner.headers)
    assert inbox["items"][0]["step"]["previousOutput"] == run["steps"][index]["output"]


async def test_a_link_decision_lands_signed_out_on_a_result_page(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    owner = await signup(client)
    run = await paused_run(client, owner)
    reject = step_link(settings, run, "reject")
    page = f"/dashboard/workflows/{run['workflowId']}"
    # Before any decision, and with a forged notice, the page asks to sign in.
    client.cookies.set("signoff_flash", "eyJtIjoiaGkiLCJlIjo5OTk5OTk5OTk5fQ==.forged")
    forged = await client.get(page, headers=HTML)
    assert forged.status_code == 303
    assert "/dashboard/login" in forged.headers["location"]
    client.cookies.clear()

    decided = await client.post(reject, data={"note": "Warmer"})
    assert decided.status_code == 303
    assert decided.headers["location"] == page
    landed = await client.get(page, headers=HTML)
    assert landed.status_code == 200
    assert "Decision recorded" in landed.text
    assert "Changes requested on step 2 of run 1" in landed.text
    assert "a revised post will be emailed for approval" in landed.text
    assert "token" not in landed.text


async def test_approval_emails_go_to_owners_and_admins_with_links_of_their_own(
    client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    owner = await signup(client)
    admin = await signup_into(client, database, owner.team_id, Role.ADMIN)
    member = await signup_into(client, database, owner.team_id, Role.MEMBER)
    run = await paused_run(client, owner)
    async with database.read() as session:
        mails = list(
            await session.scalars(select(OutboxMail).where(OutboxMail.kind == "step_approval"))
        )
    by_address = {mail.to_address: mail for mail in mails}
    assert set(by_address) == {owner.email, admin.email}
    assert member.email not in by_address
    for account in (owner, admin):
        [token] = [
            part.split("&")[0] for part in by_address[account.email].text_body.split("token=")[1:2]
        ]
        claims = jwt.decode(token, options={"verify_signature": False})
        assert claims["recipientId"] == account.user_id
        assert claims["runId"] == run["id"]
        assert claims["exp"] - claims["iat"] == 2 * 3600
    created = await create_workflow(client, owner)
    assert set(created["emailedTo"]) == {owner.email, admin.email}


async def _link_of(database: Database, kind: str, address: str, marker: str) -> str:
    """The newest ``kind`` email's link to ``address`` that contains ``marker``."""
    async with database.read() as session:
        mails = list(
            await session.scalars(
                select(OutboxMail)
                .where(OutboxMail.kind == kind, OutboxMail.to_address == address)
                .order_by(OutboxMail.id.desc())
            )
        )
    [link] = [
        word for word in mails[0].text_body.split() if marker in word and word.startswith("http")
    ][:1]
    return link.replace("http://testserver", "")


async def test_a_removed_or_demoted_admins_links_decide_nothing(
    client: httpx.AsyncClient, database: Database
) -> None:
    owner = await signup(client)
    removed = await signup_into(client, database, owner.team_id, Role.ADMIN)
    demoted = await signup_into(client, database, owner.team_id, Role.ADMIN)
    draft = await create_workflow(client, owner)
    plan_link = await _link_of(database, "plan_approval", removed.email, "/approve?")
    members = f"/api/teams/{owner.team_id}/members"
    gone = await client.delete(f"{members}/{removed.user_id}", headers=owner.headers)
    assert gone.status_code == 204
    refused = await client.post(plan_link)
    assert refused.status_code == 400
    assert refused.json()["code"] == "link_invalid"
    assert "can no longer decide" in refused.json()["error"]
    workflow = await client.get(f"/api/workflows/{draft['workflowId']}", headers=owner.headers)
    assert workflow.json()["status"] == "draft"

    run = await paused_run(client, owner)
    step_link = await _link_of(database, "step_approval", demoted.email, "action=approve")
    made_member = await client.patch(
        f"{members}/{demoted.user_id}", json={"role": "member"}, headers=owner.headers
    )
    assert made_member.status_code == 200
    assert (await client.post(step_link)).status_code == 400
    runs = f"/api/workflows/{run['workflowId']}/runs/{run['id']}"
    assert (await client.get(runs, headers=owner.headers)).json()["status"] == "awaiting_approval"
    # The owner's own link still decides.
    owners_link = await _link_of(database, "step_approval", owner.email, "action=approve")
    assert (await client.post(owners_link)).status_code == 303
