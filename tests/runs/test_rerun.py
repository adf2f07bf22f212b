"""Reruns and retries (docs/engine.md, Reruns and retries): a new run that copies the ended
run's steps before the chosen one, and its conversation up to there, in one transaction; one
active run per workflow still holds; another team's runs are 404."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from signoff.db import Database
from signoff.models import ConversationMessage, Run
from tests.support.accounts import Account, signup
from tests.support.workflows import SEED_GOAL, paused_run, wait_for_run

pytestmark = pytest.mark.postgres


async def completed_run(client: httpx.AsyncClient, account: Account) -> dict[str, Any]:
    """A workflow's run 1 (search, outline, approved post), completed."""
    paused = await paused_run(client, account, SEED_GOAL)
    workflow_id, run_id = paused["workflowId"], paused["id"]
    decided = await client.post(
        f"/api/workflows/{workflow_id}/runs/{run_id}/decision",
        json={"action": "approve"},
        headers=account.headers,
    )
    assert decided.status_code == 200, decided.text
    return await wait_for_run(client, account, workflow_id, run_id, "completed")


async def stored_messages(database: Database, conversation_id: str) -> list[tuple[int, str]]:
    async with database.read() as session:
        rows = await session.execute(
            select(ConversationMessage.position, ConversationMessage.data)
            .where(ConversationMessage.conversation_id == conversation_id)
            .order_by(ConversationMessage.position)
        )
        return [(position, data) for position, data in rows.all()]


async def test_rerun_from_step_2_copies_step_1_and_runs_the_rest(
    client: httpx.AsyncClient, database: Database
) -> None:
    account = await signup(client)
    source = await completed_run(client, account)
    workflow_id = source["workflowId"]
    response = await client.post(
        f"/api/workflows/{workflow_id}/runs/{source['id']}/rerun",
        json={"fromStepIndex": 1},
        headers=account.headers,
    )
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["runNumber"] == 2
    assert created["rerunOfRunId"] == source["id"]
    assert created["rerunFromStepIndex"] == 1
    assert created["currentStepIndex"] == 1
    rerun = await wait_for_run(client, account, workflow_id, created["id"], "awaiting_approval")
    first, second, third = rerun["steps"]
    original = source["steps"][0]
    # Step 1 is the source's, copied: same output, same times, no new model call.
    assert first["status"] == "completed"
    assert first["output"] == original["output"]
    assert first["finishedAt"] == original["finishedAt"]
    assert first["warnings"] == original["warnings"]
    # Steps 2.. ran again.
    assert second["status"] == "completed"
    assert second["startedAt"] > source["finishedAt"]
    assert third["status"] == "awaiting_approval"
    # The conversation: the source's messages before step 2's, byte for byte and in place,
    # then step 2's message once, from the rerun itself.
    copied = await stored_messages(database, rerun["conversationId"])
    original = await stored_messages(database, source["conversationId"])
    starts = [
        index
        for index, message in enumerate(rerun["messages"])
        if (message["text"] or "").startswith("Step 2 of 3: ")
    ]
    assert len(starts) == 1
    cut = next(
        position
        for position, data in original
        if '"Step 2 of 3: ' in data and '"user-prompt"' in data
    )
    assert cut > 0
    assert copied[:cut] == original[:cut]
    assert copied[cut] != original[cut]
    assert '"Step 2 of 3: ' in copied[cut][1]


async def test_rerun_rules(client: httpx.AsyncClient) -> None:
    account = await signup(client)
    paused = await paused_run(client, account, SEED_GOAL)
    workflow_id, run_id = paused["workflowId"], paused["id"]
    base = f"/api/workflows/{workflow_id}/runs/{run_id}"
    # An active run can be neither rerun nor retried: 409 with the code of any second start.
    for path, body in (("rerun", {"fromStepIndex": 0}), ("retry", None)):
        busy = await client.post(f"{base}/{path}", json=body, headers=account.headers)
        assert busy.status_code == 409, busy.text
        assert busy.json()["code"] == "run_active"
    await client.post(f"{base}/decision", json={"action": "approve"}, headers=account.headers)
    await wait_for_run(client, account, workflow_id, run_id, "completed")
    # A completed run has nothing to retry.
    nothing = await client.post(f"{base}/retry", headers=account.headers)
    assert nothing.status_code == 409
    assert nothing.json()["code"] == "nothing_to_retry"
    # Steps out of range are refused, nothing created.
    for bad in (3, 20, -1):
        refused = await client.post(
            f"{base}/rerun", json={"fromStepIndex": bad}, headers=account.headers
        )
        assert refused.status_code == 422, refused.text
    rerun = await client.post(f"{base}/rerun", json={"fromStepIndex": 2}, headers=account.headers)
    assert rerun.status_code == 201
    # While the rerun is active, another rerun of the same run is a 409 run_active.
    again = await client.post(f"{base}/rerun", json={"fromStepIndex": 0}, headers=account.headers)
    assert again.status_code == 409
    assert again.json()["code"] == "run_active"
    runs = (await client.get(f"/api/workflows/{workflow_id}/runs", headers=account.headers)).json()
    assert [run["runNumber"] for run in runs["runs"]] == [2, 1]


async def test_retry_a_failed_run_from_its_failed_step(
    client: httpx.AsyncClient, database: Database
) -> None:
    account = await signup(client)
    paused = await paused_run(client, account, SEED_GOAL)
    workflow_id, run_id = paused["workflowId"], paused["id"]
    base = f"/api/workflows/{workflow_id}/runs/{run_id}"
    stopped = await client.post(f"{base}/stop", headers=account.headers)
    assert stopped.json()["failureReason"] == "Stopped by user"
    # A stopped run is retried from the step it stopped at (here the post, step 3).
    retried = await client.post(f"{base}/retry", headers=account.headers)
    assert retried.status_code == 201, retried.text
    assert retried.json()["rerunFromStepIndex"] == 2
    second = await wait_for_run(
        client, account, workflow_id, retried.json()["id"], "awaiting_approval"
    )
    assert [step["status"] for step in second["steps"]] == [
        "completed",
        "completed",
        "awaiting_approval",
    ]
    await client.post(
        f"/api/workflows/{workflow_id}/runs/{second['id']}/stop", headers=account.headers
    )
    # A run that failed at step 2 (as the engine records it) is retried from step 2, and the
    # copy ends where the step-2 message would have begun.
    async with database.write() as session:
        await session.execute(
            update(Run)
            .where(Run.id == second["id"])
            .values(failed_step_index=1, failure_reason="Step 2 (generate_outline) failed: x")
        )
    retried = await client.post(
        f"/api/workflows/{workflow_id}/runs/{second['id']}/retry", headers=account.headers
    )
    assert retried.status_code == 201, retried.text
    assert retried.json()["rerunFromStepIndex"] == 1
    third = await wait_for_run(
        client, account, workflow_id, retried.json()["id"], "awaiting_approval"
    )
    assert third["steps"][0]["output"] == paused["steps"][0]["output"]
    assert third["rerunOfRunId"] == second["id"]


async def test_another_teams_runs_are_not_found(client: httpx.AsyncClient) -> None:
    owner = await signup(client)
    outsider = await signup(client)
    source = await completed_run(client, owner)
    base = f"/api/workflows/{source['workflowId']}/runs/{source['id']}"
    for path, body in (("rerun", {"fromStepIndex": 1}), ("retry", None)):
        hidden = await client.post(f"{base}/{path}", json=body, headers=outsider.headers)
        assert hidden.status_code == 404, hidden.text
        assert hidden.json()["code"] == "run_not_found"
    listed = await client.get("/api/runs", headers=outsider.headers)
    assert listed.json() == {"runs": [], "nextCursor": None}
    filtered = await client.get(
        "/api/runs", params={"workflowId": source["workflowId"]}, headers=outsider.headers
    )
    assert filtered.status_code == 404
    assert filtered.json()["code"] == "workflow_not_found"
