"""Workflows and runs through the API: draft, activate, and wait for a run (the inline engine
works in the background), as a client would."""

from __future__ import annotations

from typing import Any

import httpx

from tests.support.accounts import Account
from tests.support.waiting import wait_until, wait_until_sync

# A goal the offline model plans as research, an outline and an approval-gated post.
GOAL = "Write a LinkedIn post about our spring product launch"
# The seed goal of SPEC §1: the same three steps, on a schedule.
SEED_GOAL = "Publish a weekly LinkedIn post about AI news every Monday morning"


def _created(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def create_workflow(
    client: httpx.AsyncClient, account: Account, goal: str = GOAL, **fields: Any
) -> dict[str, Any]:
    """A new draft workflow (its plan drafted); the create response."""
    body = {"goal": goal, **fields}
    return _created(await client.post("/api/workflows", json=body, headers=account.headers))


def create_workflow_sync(
    client: httpx.Client, account: Account, goal: str = GOAL, **fields: Any
) -> dict[str, Any]:
    """:func:`create_workflow` with a synchronous client (a real server, from a Playwright
    test)."""
    body = {"goal": goal, **fields}
    return _created(client.post("/api/workflows", json=body, headers=account.headers))


async def activate(client: httpx.AsyncClient, account: Account, workflow_id: str) -> int:
    """Approve the draft's plan, which starts run 1; its id."""
    response = await client.post(f"/api/workflows/{workflow_id}/activate", headers=account.headers)
    assert response.status_code == 200, response.text
    run_id: int = response.json()["workflowRuns"][0]["id"]
    return run_id


async def wait_for_run(
    client: httpx.AsyncClient,
    account: Account,
    workflow_id: str,
    run_id: int,
    status: str,
    *,
    timeout: float = 10.0,
) -> dict[str, Any]:
    """The run, once it reached ``status`` (polled through the API)."""
    last: dict[str, Any] = {}

    async def reached() -> dict[str, Any] | None:
        response = await client.get(
            f"/api/workflows/{workflow_id}/runs/{run_id}", headers=account.headers
        )
        assert response.status_code == 200, response.text
        last.update(response.json())
        return dict(last) if last["status"] == status else None

    return await wait_until(
        reached,
        lambda: f"run {run_id} to be {status}; it stayed {last.get('status')}: {last}",
        timeout=timeout,
    )


async def start_run(
    client: httpx.AsyncClient, account: Account, goal: str = GOAL
) -> tuple[str, int]:
    """A new workflow, approved: it and its run 1 (running, soon waiting at its post)."""
    workflow_id = (await create_workflow(client, account, goal))["workflowId"]
    return workflow_id, await activate(client, account, workflow_id)


async def paused_run(
    client: httpx.AsyncClient, account: Account, goal: str = GOAL
) -> dict[str, Any]:
    """A new workflow, approved: its run 1 once it waits for approval of its post."""
    workflow_id, run_id = await start_run(client, account, goal)
    return await wait_for_run(client, account, workflow_id, run_id, "awaiting_approval")


def wait_for_run_sync(
    client: httpx.Client,
    account: Account,
    workflow_id: str,
    run_id: int,
    status: str,
    *,
    timeout: float = 10.0,
) -> dict[str, Any]:
    """:func:`wait_for_run` with a synchronous client (a real server, from a Playwright test)."""
    last: dict[str, Any] = {}

    def reached() -> dict[str, Any] | None:
        response = client.get(
            f"/api/workflows/{workflow_id}/runs/{run_id}", headers=account.headers
        )
        assert response.status_code == 200, response.text
        last.update(response.json())
        return dict(last) if last["status"] == status else None

    return wait_until_sync(
        reached,
        lambda: f"run {run_id} to be {status}; it stayed {last.get('status')}: {last}",
        timeout=timeout,
        interval=0.2,
    )
