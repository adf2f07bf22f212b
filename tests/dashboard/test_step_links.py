"""Step decision links (SPEC §6): modes, scanners, replays, stale attempts, expiry."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx
import pytest

from signoff.approvals import tokens
from signoff.config import Settings
from signoff.db import Database
from signoff.kit.clock import FrozenClock
from signoff.models import Run
from tests.support.accounts import BROWSER, HTML, signup
from tests.support.db import stored
from tests.support.links import step_link
from tests.support.workflows import paused_run, wait_for_run

pytestmark = pytest.mark.postgres


async def status(database: Database, run_id: int) -> str:
    return (await stored(database, Run, run_id)).status.value


async def test_confirm_mode_pages_and_post(
    client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    account = await signup(client)
    run = await paused_run(client, account)
    approve = step_link(settings, run, "approve")
    reject = step_link(settings, run, "reject")
    page = await client.get(approve, headers=HTML)
    assert page.status_code == 200
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["referrer-policy"] == "no-referrer"
    post_output = run["steps"][run["currentStepIndex"]]["output"]
    assert post_output.splitlines()[0][:40] in page.text.replace("&#39;", "'")
    reject_page = await client.get(reject, headers=HTML)
    assert 'name="note"' in reject_page.text
    assert "<title>Request changes · Signoff</title>" in reject_page.text
    # Scanners and HEAD decide nothing; neither does a plain GET without a session.
    for agent in ("Slackbot-LinkExpanding 1.0", "Mozilla/5.0 (compatible; bingbot/2.0)", ""):
        assert (await client.get(approve, headers={"User-Agent": agent})).status_code == 200
    assert (await client.head(approve, headers={"User-Agent": BROWSER})).status_code == 200
    assert (await client.get(reject + "&note=Shorter", headers=HTML)).status_code == 200
    assert await status(database, run["id"]) == "awaiting_approval"
    decided = await client.post(approve, headers=HTML)
    assert decided.status_code == 303
    assert decided.headers["location"] == f"/dashboard/workflows/{run['workflowId']}"
    assert await status(database, run["id"]) in ("approved", "running", "completed")


async def test_replays_other_action_stale_attempt_expiry_wrong_type(
    client: httpx.AsyncClient, database: Database, settings: Settings, clock: FrozenClock
) -> None:
    account = await signup(client)
    run = await paused_run(client, account)
    approve = step_link(settings, run, "approve")
    reject = step_link(settings, run, "reject")
    expired_later = step_link(settings, run, "approve")

    rejected = await client.post(reject, data={"note": "More concrete"})
    assert rejected.status_code == 303
    again = await wait_for_run(client, account, run["workflowId"], run["id"], "awaiting_approval")
    assert again["steps"][run["currentStepIndex"]]["attempt"] == 2

    for link, code in [
        (reject, "already_decided"),  # a replay
        (approve, "already_decided"),  # the other action after a decision
        (step_link(settings, run, "approve", attempt=3), "stale_attempt"),
    ]:
        response = await client.post(link)
        assert response.status_code == 400, link
        assert response.json()["code"] == code
        html = await client.post(link, headers=HTML)
        assert html.status_code == 400
        assert "text/html" in html.headers["content-type"]

    wrong_type = tokens.issue_plan_token(settings, workflow_id=run["workflowId"], revision=1)
    response = await client.post(f"/api/workflows/resume?token={wrong_type}&action=approve")
    assert response.json()["code"] == "link_wrong_type"
    no_action = await client.post(step_link(settings, run, "maybe", attempt=2))
    assert no_action.status_code == 400
    other_run = {**run, "id": run["id"] + 1000}
    assert (await client.post(step_link(settings, other_run, "approve", 2))).json()[
        "code"
    ] == "link_invalid"

    clock.advance(timedelta(hours=2))
    too_old = await client.post(expired_later)
    assert too_old.status_code == 400
    assert too_old.json()["code"] == "link_expired"


async def test_expired_link_then_fresh_email(
    client: httpx.AsyncClient, database: Database, settings: Settings, clock: FrozenClock
) -> None:
    account = await signup(client)
    run = await paused_run(client, account)
    link = step_link(settings, run, "approve")
    clock.advance(timedelta(hours=2, seconds=1))
    expired = await client.post(link)
    assert expired.status_code == 400
    assert expired.json()["code"] == "link_expired"
    assert await status(database, run["id"]) == "awaiting_approval"
    fresh = await client.post(
        f"/api/workflows/{run['workflowId']}/runs/{run['id']}/approval-email",
        headers=account.headers,
    )
    assert fresh.status_code == 200
    assert (await client.post(step_link(settings, run, "approve"))).status_code == 303


async def test_signed_in_admin_decides_on_get(
    client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    account = await signup(client)
    run = await paused_run(client, account)
    client.cookies.set("signoff_session", account.token)
    # A reject GET needs a note to decide at once; without one it shows the feedback box.
    page = await client.get(step_link(settings, run, "reject"), headers=HTML)
    assert page.status_code == 200
    assert await status(database, run["id"]) == "awaiting_approval"
    decided = await client.get(step_link(settings, run, "reject") + "&note=Shorter", headers=HTML)
    assert decided.status_code == 303
    again = await wait_for_run(client, account, run["workflowId"], run["id"], "awaiting_approval")
    approve = step_link(settings, again, "approve", attempt=2)
    assert (await client.get(approve, headers=HTML)).status_code == 303
    await wait_for_run(client, account, run["workflowId"], run["id"], "completed")


async def test_one_click_mode(
    client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    settings.link_mode = "one-click"
    account = await signup(client)
    run = await paused_run(client, account)
    link = step_link(settings, run, "approve")
    assert (await client.get(link, headers={"User-Agent": "LinkedInBot/1.0"})).status_code == 200
    assert (await client.head(link, headers={"User-Agent": BROWSER})).status_code == 200
    assert await status(database, run["id"]) == "awaiting_approval"
    assert (await client.get(link, headers={"User-Agent": BROWSER})).status_code == 303
    await wait_for_run(client, account, run["workflowId"], run["id"], "completed")


async def test_concurrent_decisions_one_wins(
    client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    account = await signup(client)
    run = await paused_run(client, account)
    links = [step_link(settings, run, "approve"), step_link(settings, run, "reject")] * 5
    responses = await asyncio.gather(*(client.post(link) for link in links))
    codes = sorted(response.status_code for response in responses)
    assert codes == [303] + [400] * 9
    assert {r.json()["code"] for r in responses if r.status_code == 400} <= {
        "already_decided",
        "not_awaiting",
    }
