"""The workflow endpoints: validation, tenancy, roles, edits, listing."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic_ai.messages import ModelMessage, ModelResponse
from pydantic_ai.models.function import AgentInfo, FunctionModel
from sqlalchemy import event

from signoff.db import Database
from signoff.models import OutboxMail, Role, Workflow
from tests.support.accounts import signup, signup_into
from tests.support.db import count, stored
from tests.support.workflows import create_workflow, paused_run

pytestmark = pytest.mark.postgres

GOAL = "Research the latest AI news and write a LinkedIn post about it"


@pytest.fixture
def model_calls(app: FastAPI) -> list[str]:
    """Replace the model with one that records each call and fails the request."""
    calls: list[str] = []

    def refuse(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        calls.append("called")
        raise AssertionError("the model must not be called")

    app.state.llm = FunctionModel(refuse, model_name="must-not-be-called")
    return calls


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "goal"),
        ({"goal": "   "}, "goal"),
        ({"goal": "x" * 4001}, "goal"),
        ({"goal": "ok", "schedule": "61 * * * *"}, "schedule"),
        ({"goal": "ok", "schedule": "* * *"}, "schedule"),
        ({"goal": "ok", "schedule": "0 9 * * 1 2026"}, "schedule"),
        ({"goal": "ok", "timezone": "Mars/Olympus_Mons"}, "timezone"),
        ({"goal": "ok", "timezone": "../../etc/passwd"}, "timezone"),
        ({"goal": "ok", "colour": "blue"}, "colour"),
    ],
)
async def test_bad_input_is_422_naming_the_field_with_no_llm_call(
    client: httpx.AsyncClient,
    database: Database,
    model_calls: list[str],
    body: dict[str, Any],
    field: str,
) -> None:
    account = await signup(client)
    response = await client.post("/api/workflows", json=body, headers=account.headers)
    assert response.status_code == 422
    payload = response.json()
    assert payload["code"] == "validation_error"
    assert [detail["field"] for detail in payload["details"]] == [field]
    assert model_calls == []
    assert await count(database, Workflow) == 0
    assert await count(database, OutboxMail) == 1  # only signup's verification email


async def test_goal_is_trimmed_and_4000_characters_are_accepted(
    client: httpx.AsyncClient,
) -> None:
    account = await signup(client)
    response = await client.post(
        "/api/workflows", json={"goal": "  " + "a" * 4000 + "\n "}, headers=account.headers
    )
    assert response.status_code == 201, response.text
    detail = await client.get(
        f"/api/workflows/{response.json()['workflowId']}", headers=account.headers
    )
    assert detail.json()["goal"] == "a" * 4000


async def test_planner_failure_is_502_and_nothing_is_saved(
    app: FastAPI, client: httpx.AsyncClient, database: Database
) -> None:
    def broken(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        from pydantic_ai.messages import ToolCallPart

        return ModelResponse(
            parts=[ToolCallPart(info.output_tools[0].name, {"title": "T", "steps": []})]
        )

    app.state.llm = FunctionModel(broken, model_name="broken")
    account = await signup(client)
    response = await client.post("/api/workflows", json={"goal": GOAL}, headers=account.headers)
    assert response.status_code == 502
    assert response.json()["code"] == "planner_failed"
    assert await count(database, Workflow) == 0
    assert await count(database, OutboxMail) == 1  # only signup's verification email


async def test_create_list_and_detail(client: httpx.AsyncClient) -> None:
    account = await signup(client)
    first = await create_workflow(
        client, account, GOAL, schedule="0 9 * * MON", timezone="Europe/Paris"
    )
    second = await create_workflow(client, account, GOAL)
    listed = await client.get("/api/workflows", headers=account.headers)
    assert listed.status_code == 200
    items = listed.json()
    assert [item["id"] for item in items] == [second["workflowId"], first["workflowId"]]
    assert items[1]["stepCount"] == len(first["steps"])
    assert items[1]["latestRun"] is None
    assert items[1]["schedule"] == "0 9 * * MON"
    assert items[1]["scheduleDescription"] == "At 09:00, only on Monday"
    assert items[1]["timezone"] == "Europe/Paris"
    assert items[1]["createdAt"].endswith("Z") or "+00:00" in items[1]["createdAt"]
    detail = (
        await client.get(f"/api/workflows/{first['workflowId']}", headers=account.headers)
    ).json()
    assert [step["stepIndex"] for step in detail["workflowSteps"]] == list(
        range(len(first["steps"]))
    )
    assert detail["workflowSteps"] == first["steps"]
    assert detail["workflowRuns"] == []
    assert detail["status"] == "draft"
    assert detail["planRevision"] == 1


async def test_another_teams_workflow_is_404_on_every_route(
    client: httpx.AsyncClient, database: Database
) -> None:
    owner = await signup(client)
    stranger = await signup(client)
    workflow_id = (await create_workflow(client, owner, GOAL))["workflowId"]
    routes = [
        ("GET", f"/api/workflows/{workflow_id}", None),
        (
            "POST",
            f"/api/workflows/{workflow_id}/steps",
            {"steps": [{"description": "x", "toolName": "llm_response"}]},
        ),
        ("POST", f"/api/workflows/{workflow_id}/activate", None),
        ("POST", f"/api/workflows/{workflow_id}/archive", None),
        ("POST", f"/api/workflows/{workflow_id}/approval-email", None),
    ]
    for method, path, body in routes:
        foreign = await client.request(method, path, json=body, headers=stranger.headers)
        missing = await client.request(
            method, path.replace(workflow_id, "no-such-id"), json=body, headers=owner.headers
        )
        assert foreign.status_code == missing.status_code == 404, path
        assert foreign.json() == missing.json()
    assert (await client.get("/api/workflows", headers=stranger.headers)).json() == []
    workflow = await stored(database, Workflow, workflow_id)
    assert workflow.status.value == "draft"
    assert workflow.plan_revision == 1


async def test_members_cannot_edit_activate_or_archive(
    client: httpx.AsyncClient, database: Database
) -> None:
    owner = await signup(client)
    member = await signup_into(client, database, owner.team_id, Role.MEMBER)
    as_member = member.headers_in(owner.team_id)
    workflow_id = (await create_workflow(client, owner, GOAL))["workflowId"]
    step = {"steps": [{"description": "x", "toolName": "llm_response"}]}
    for path, body in [("steps", step), ("activate", None), ("archive", None)]:
        response = await client.post(
            f"/api/workflows/{workflow_id}/{path}", json=body, headers=as_member
        )
        assert response.status_code == 403, path
        assert response.json()["code"] == "forbidden"
    # ... but they see the workflow, may create workflows, and may ask for a fresh email.
    assert (await client.get(f"/api/workflows/{workflow_id}", headers=as_member)).status_code == 200
    resend = await client.post(f"/api/workflows/{workflow_id}/approval-email", headers=as_member)
    assert resend.status_code == 200
    assert resend.json()["emailedTo"] == [owner.email]
    mine = await client.post("/api/workflows", json={"goal": GOAL}, headers=as_member)
    assert mine.status_code == 201
    # Plans go to the team's owners, not to the member who asked.
    assert mine.json()["emailedTo"] == [owner.email]


async def test_edit_steps_merge_replace_and_rules(
    client: httpx.AsyncClient, database: Database
) -> None:
    account = await signup(client)
    created = await create_workflow(client, account, GOAL)
    workflow_id = created["workflowId"]
    original = created["steps"]
    path = f"/api/workflows/{workflow_id}/steps"

    merged = await client.post(
        path,
        json={
            "steps": [
                {
                    "stepIndex": 0,
                    "description": "Search for AI chip news",
                    "toolName": "web_search",
                    "toolInput": {"query": "AI chips"},
                },
                {"description": "Draw an image for the post", "toolName": "generate_image"},
            ]
        },
        headers=account.headers,
    )
    assert merged.status_code == 200, merged.text
    steps = merged.json()["workflowSteps"]
    assert len(steps) == len(original) + 1
    assert steps[0]["description"] == "Search for AI chip news"
    assert steps[0]["toolInput"] == {"query": "AI chips"}
    assert steps[1:-1] == original[1:]
    # Publishing tools always wait for approval, whatever the edit said.
    assert steps[-1]["requiresApproval"] is True
    assert [step["stepIndex"] for step in steps] == list(range(len(steps)))
    assert merged.json()["planRevision"] == 2

    replaced = await client.post(
        path,
        json={
            "mode": "replace",
            "steps": [{"description": "Summarise", "toolName": "llm_response"}],
        },
        headers=account.headers,
    )
    assert replaced.status_code == 200
    assert len(replaced.json()["workflowSteps"]) == 1
    assert replaced.json()["planRevision"] == 3

    bad_cases = [
        {"mode": "replace", "steps": [{"description": "Post", "toolName": "format_post"}]},
        {"steps": [{"description": "x", "toolName": "send_money"}]},
        {"steps": [{"stepIndex": 7, "description": "x", "toolName": "llm_response"}]},
        {"mode": "replace", "steps": []},
        {"mode": "replace", "steps": [{"description": "x", "toolName": "llm_response"}] * 21},
        {"mode": "sideways", "steps": [{"description": "x", "toolName": "llm_response"}]},
    ]
    for bad in bad_cases:
        response = await client.post(path, json=bad, headers=account.headers)
        assert response.status_code == 422, bad
        assert response.json()["error"]
    detail = (await client.get(f"/api/workflows/{workflow_id}", headers=account.headers)).json()
    assert detail["planRevision"] == 3
    assert len(detail["workflowSteps"]) == 1


async def test_active_workflows_cannot_be_edited_and_archive(
    client: httpx.AsyncClient,
) -> None:
    account = await signup(client)
    workflow_id = (await create_workflow(client, account, GOAL))["workflowId"]
    activated = await client.post(f"/api/workflows/{workflow_id}/activate", headers=account.headers)
    assert activated.status_code == 200
    assert activated.json()["status"] == "active"
    again = await client.post(f"/api/workflows/{workflow_id}/activate", headers=account.headers)
    assert again.status_code == 409
    assert again.json()["code"] == "already_decided"
    edit = await client.post(
        f"/api/workflows/{workflow_id}/steps",
        json={"steps": [{"description": "x", "toolName": "llm_response"}]},
        headers=account.headers,
    )
    assert edit.status_code == 409
    assert edit.json()["code"] == "not_draft"
    resend = await client.post(
        f"/api/workflows/{workflow_id}/approval-email", headers=account.headers
    )
    assert resend.status_code == 409
    # Activation started run 1, which is active: archiving waits for it.
    [run] = activated.json()["workflowRuns"]
    assert run["trigger"] == "approval"
    refused = await client.post(f"/api/workflows/{workflow_id}/archive", headers=account.headers)
    assert refused.status_code == 409
    assert refused.json()["code"] == "run_active"
    stopped = await client.post(
        f"/api/workflows/{workflow_id}/runs/{run['id']}/stop", headers=account.headers
    )
    assert stopped.status_code == 200
    archived = await client.post(f"/api/workflows/{workflow_id}/archive", headers=account.headers)
    assert archived.status_code == 200
    assert archived.json()["status"] == "archived"
    twice = await client.post(f"/api/workflows/{workflow_id}/archive", headers=account.headers)
    assert twice.status_code == 409


async def test_details_read_in_the_session_checks_transaction(
    client: httpx.AsyncClient, database: Database
) -> None:
    """A workflow's and a run's detail: the session check and the reads share one transaction."""
    account = await signup(client)
    run = await paused_run(client, account, GOAL)
    request_task = asyncio.current_task()
    begins: list[str] = []

    def begun(_connection: Any) -> None:
        if asyncio.current_task() is request_task:  # not the engine's or mail sender's work
            begins.append("BEGIN")

    engine = database.engine.sync_engine
    event.listen(engine, "begin", begun)
    try:
        for url in (
            f"/api/workflows/{run['workflowId']}",
            f"/api/workflows/{run['workflowId']}/runs/{run['id']}",
        ):
            begins.clear()
            response = await client.get(url, headers=account.headers)
            assert response.status_code == 200, response.text
            assert begins == ["BEGIN"], url
    finally:
        event.remove(engine, "begin", begun)


async def test_approving_a_revision_that_was_edited_since_is_refused(
    client: httpx.AsyncClient, database: Database
) -> None:
    owner = await signup(client)
    workflow_id = (await create_workflow(client, owner, GOAL))["workflowId"]
    edited = await client.post(
        f"/api/workflows/{workflow_id}/steps",
        json={"steps": [{"description": "Say hello", "toolName": "llm_response"}]},
        headers=owner.headers,
    )
    assert edited.json()["planRevision"] == 2
    activate = f"/api/workflows/{workflow_id}/activate"
    stale = await client.post(activate, params={"revision": 1}, headers=owner.headers)
    assert (stale.status_code, stale.json()["code"]) == (409, "plan_changed")
    assert (await stored(database, Workflow, workflow_id)).status.value == "draft"
    seen = await client.post(activate, params={"revision": 2}, headers=owner.headers)
    assert seen.status_code == 200
    assert seen.json()["status"] == "active"
