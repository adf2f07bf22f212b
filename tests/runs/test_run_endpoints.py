"""Run preconditions, concurrency, stop, listing, and the dashboard's decision endpoint."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from signoff.db import Database
from signoff.models import Role
from tests.support.accounts import signup, signup_into
from tests.support.workflows import GOAL, start_run, wait_for_run

pytestmark = pytest.mark.postgres


async def test_run_preconditions(client: httpx.AsyncClient) -> None:
    account = await signup(client)
    draft = await client.post("/api/workflows", json={"goal": GOAL}, headers=account.headers)
    draft_id = draft.json()["workflowId"]
    not_active = await client.post(f"/api/workflows/{draft_id}/run", headers=account.headers)
    assert not_active.status_code == 422
    assert not_active.json()["code"] == "workflow_not_active"

    workflow_id, first = await start_run(client, account)
    busy = await client.post(f"/api/workflows/{workflow_id}/run", headers=account.headers)
    assert busy.status_code == 409
    assert busy.json()["code"] == "run_active"
    await wait_for_run(client, account, workflow_id, first, "awaiting_approval")
    stop = await client.post(
        f"/api/workflows/{workflow_id}/runs/{first}/stop", headers=account.headers
    )
    assert stop.status_code == 200
    second = await client.post(f"/api/workflows/{workflow_id}/run", headers=account.headers)
    assert second.status_code == 201
    body = second.json()
    assert body["message"] == "Workflow run started"
    assert isinstance(body["runId"], int)
    assert body["conversationId"]
    run = await wait_for_run(client, account, workflow_id, body["runId"], "awaiting_approval")
    assert run["runNumber"] == 2
    assert run["trigger"] == "manual"
    await client.post(
        f"/api/workflows/{workflow_id}/runs/{body['runId']}/stop", headers=account.headers
    )
    archived = await client.post(f"/api/workflows/{workflow_id}/archive", headers=account.headers)
    assert archived.status_code == 200
    after = await client.post(f"/api/workflows/{workflow_id}/run", headers=account.headers)
    assert after.status_code == 422


async def test_fifty_concurrent_starts_one_wins(client: httpx.AsyncClient) -> None:
    account = await signup(client)
    workflow_id, first = await start_run(client, account)
    await wait_for_run(client, account, workflow_id, first, "awaiting_approval")
    await client.post(f"/api/workflows/{workflow_id}/runs/{first}/stop", headers=account.headers)
    responses = await asyncio.gather(
        *(
            client.post(f"/api/workflows/{workflow_id}/run", headers=account.headers)
            for _ in range(50)
        )
    )
    codes = sorted(response.status_code for response in responses)
    assert codes == [201] + [409] * 49
    runs = (await client.get(f"/api/workflows/{workflow_id}/runs", headers=account.headers)).json()[
        "runs"
    ]
    assert [run["runNumber"] for run in runs] == [2, 1]


async def test_stop_while_awaiting_approval_kills_the_links(
    client: httpx.AsyncClient, database: Database
) -> None:
    account = await signup(client)
    workflow_id, run_id = await start_run(client, account)
    paused = await wait_for_run(client, account, workflow_id, run_id, "awaiting_approval")
    stopped = await client.post(
        f"/api/workflows/{workflow_id}/runs/{run_id}/stop", headers=account.headers
    )
    assert stopped.status_code == 200
    assert stopped.json()["status"] == "failed"
    assert stopped.json()["failureReason"] == "Stopped by user"
    detail = (
        await client.get(f"/api/workflows/{workflow_id}/runs/{run_id}", headers=account.headers)
    ).json()
    index = paused["currentStepIndex"]
    assert detail["steps"][index]["status"] == "skipped"
    assert all(step["status"] in ("completed", "skipped") for step in detail["steps"])
    decision = await client.post(
        f"/api/workflows/{workflow_id}/runs/{run_id}/decision",
        json={"action": "approve"},
        headers=account.headers,
    )
    assert decision.status_code == 409
    assert decision.json()["code"] == "run_stopped"
    again = await client.post(
        f"/api/workflows/{workflow_id}/runs/{run_id}/stop", headers=account.headers
    )
    assert again.status_code == 409
    assets = (
        await client.get("/api/assets", params={"runId": run_id}, headers=account.headers)
    ).json()
    assert "pending" not in {asset["status"] for asset in assets}


async def test_decision_endpoint_roles_and_flow(
    client: httpx.AsyncClient, database: Database
) -> None:
    owner = await signup(client)
    member = await signup_into(client, database, owner.team_id, Role.MEMBER)
    as_member = member.headers_in(owner.team_id)
    workflow_id, run_id = await start_run(client, owner)
    await wait_for_run(client, owner, workflow_id, run_id, "awaiting_approval")
    path = f"/api/workflows/{workflow_id}/runs/{run_id}/decision"
    assert (
        await client.post(path, json={"action": "approve"}, headers=as_member)
    ).status_code == 403
    bad = await client.post(path, json={"action": "maybe"}, headers=owner.headers)
    assert bad.status_code == 422
    # Members may ask for fresh links and stop runs.
    fresh = await client.post(
        f"/api/workflows/{workflow_id}/runs/{run_id}/approval-email", headers=as_member
    )
    assert fresh.status_code == 200
    assert fresh.json()["emailedTo"] == [owner.email]
    approved = await client.post(path, json={"action": "approve"}, headers=owner.headers)
    assert approved.status_code == 200
    assert approved.json()["status"] in ("completed", "approved", "running")
    await wait_for_run(client, owner, workflow_id, run_id, "completed")
    twice = await client.post(path, json={"action": "approve"}, headers=owner.headers)
    assert twice.status_code == 409
    no_email = await client.post(
        f"/api/workflows/{workflow_id}/runs/{run_id}/approval-email", headers=owner.headers
    )
    assert no_email.status_code == 409


async def test_runs_listing_detail_and_tenancy(client: httpx.AsyncClient) -> None:
    owner = await signup(client)
    stranger = await signup(client)
    workflow_id, run_id = await start_run(client, owner)
    await wait_for_run(client, owner, workflow_id, run_id, "awaiting_approval")
    paths: list[tuple[str, str, dict[str, Any] | None]] = [
        ("GET", f"/api/workflows/{workflow_id}/runs", None),
        ("GET", f"/api/workflows/{workflow_id}/runs/{run_id}", None),
        ("POST", f"/api/workflows/{workflow_id}/run", None),
        ("POST", f"/api/workflows/{workflow_id}/runs/{run_id}/stop", None),
        ("POST", f"/api/workflows/{workflow_id}/runs/{run_id}/decision", {"action": "approve"}),
        ("POST", f"/api/workflows/{workflow_id}/runs/{run_id}/approval-email", None),
    ]
    for method, path, body in paths:
        response = await client.request(method, path, json=body, headers=stranger.headers)
        assert response.status_code == 404, path
    missing_run = await client.get(
        f"/api/workflows/{workflow_id}/runs/999999", headers=owner.headers
    )
    assert missing_run.status_code == 404
    assert (await client.get("/api/assets", headers=stranger.headers)).json() == []
    listed = await client.get("/api/workflows", headers=owner.headers)
    [item] = listed.json()
    assert item["latestRun"]["id"] == run_id
    assert item["latestRun"]["status"] == "awaiting_approval"
    bad_cursor = await client.get(
        f"/api/workflows/{workflow_id}/runs", params={"cursor": "x"}, headers=owner.headers
    )
    assert bad_cursor.status_code == 422
