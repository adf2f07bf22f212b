"""The audit trail: every audited action records exactly one event, with who, when, the channel
and the user agent; a rollback records nothing; GET /api/audit pages stably, for owners and
admins of the team only."""

from __future__ import annotations

import json
from collections import Counter
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from signoff.approvals import tokens
from signoff.audit.service import Actor, Channel
from signoff.config import Settings
from signoff.db import Database
from signoff.kit.clock import FrozenClock
from signoff.memory import service as memory_service
from signoff.models import AuditEvent, MemoryEntry, Role
from tests.support.accounts import BROWSER, HTML, Account, signup, signup_into
from tests.support.links import step_link
from tests.support.pages import browser_factory, draft_on_page, sign_in
from tests.support.workflows import create_workflow, wait_for_run

pytestmark = pytest.mark.postgres

AGENT = "audit-test/1.0"


def api(account: Account) -> dict[str, str]:
    return {**account.headers, "User-Agent": AGENT}


async def events(
    client: httpx.AsyncClient, account: Account, team_id: str | None = None, **params: Any
) -> list[dict[str, Any]]:
    """Every event the filters select (in ``team_id``, else the account's own team), following
    the cursor to the end."""
    headers = account.headers_in(team_id) if team_id else account.headers
    found: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        response = await client.get("/api/audit", params=query, headers=headers)
        assert response.status_code == 200, response.text
        body = response.json()
        found.extend(body["events"])
        cursor = body["nextCursor"]
        if cursor is None:
            return found


async def ok(response: httpx.Response, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, response.text
    return response.json() if response.content else {}


async def test_every_api_action_records_one_event_through_the_api(
    client: httpx.AsyncClient, database: Database
) -> None:
    owner = await signup(client)
    headers = api(owner)
    created = await create_workflow(client, owner)
    workflow_id = created["workflowId"]
    step = created["steps"][0]
    await ok(
        await client.post(
            f"/api/workflows/{workflow_id}/steps",
            json={
                "steps": [
                    {
                        "stepIndex": 0,
                        "description": "Research the launch news",
                        "toolName": step["toolName"],
                        "toolInput": step["toolInput"],
                    }
                ]
            },
            headers=headers,
        )
    )
    activated = await ok(
        await client.post(f"/api/workflows/{workflow_id}/activate", headers=headers)
    )
    run_id = activated["workflowRuns"][0]["id"]
    run = await wait_for_run(client, owner, workflow_id, run_id, "awaiting_approval")
    decision = f"/api/workflows/{workflow_id}/runs/{run_id}/decision"
    await ok(
        await client.post(decision, json={"action": "reject", "note": "Shorter"}, headers=headers)
    )
    await wait_for_run(client, owner, workflow_id, run_id, "awaiting_approval")
    await ok(await client.post(decision, json={"action": "approve"}, headers=headers))
    second = await ok(await client.post(f"/api/workflows/{workflow_id}/run", headers=headers), 201)
    await ok(
        await client.post(
            f"/api/workflows/{workflow_id}/runs/{second['runId']}/stop", headers=headers
        )
    )
    await ok(
        await client.patch(
            f"/api/workflows/{workflow_id}", json={"schedule": "0 9 * * 1"}, headers=headers
        )
    )
    await ok(await client.post(f"/api/workflows/{workflow_id}/archive", headers=headers))
    for value in ("First.", "Second."):
        await ok(await client.put("/api/memory/notes", json={"value": value}, headers=headers))
    await ok(await client.delete("/api/memory/notes", headers=headers), 204)
    team = f"/api/teams/{owner.team_id}"
    invitation = await ok(
        await client.post(
            f"{team}/invitations",
            json={"email": "new@example.com", "role": "member"},
            headers=headers,
        ),
        201,
    )
    await ok(await client.delete(f"{team}/invitations/{invitation['id']}", headers=headers), 204)
    member = await signup_into(client, database, owner.team_id, Role.MEMBER)
    await ok(
        await client.patch(
            f"{team}/members/{member.user_id}", json={"role": "admin"}, headers=headers
        )
    )
    await ok(await client.delete(f"{team}/members/{member.user_id}", headers=headers), 204)
    leaver = await signup_into(client, database, owner.team_id, Role.MEMBER)
    await ok(await client.post(f"{team}/leave", headers=api(leaver)), 204)

    recorded = await events(client, owner)
    assert Counter(event["action"] for event in recorded) == Counter(
        [
            "plan.edit",
            "plan.approve",
            "step.reject",
            "step.approve",
            "run.stop",
            "schedule.change",
            "workflow.archive",
            "memory.create",
            "memory.update",
            "memory.delete",
            "member.invite",
            "invitation.revoke",
            "member.role",
            "member.remove",
            "member.leave",
        ]
    )
    assert {(event["channel"], event["userAgent"]) for event in recorded} == {("api", AGENT)}
    by_action = {event["action"]: event for event in recorded}
    assert by_action["member.leave"]["actor"] == leaver.email
    assert by_action["member.leave"]["actorUserId"] == leaver.user_id
    others = [event for event in recorded if event["action"] != "member.leave"]
    assert {(event["actor"], event["actorUserId"]) for event in others} == {
        (owner.email, owner.user_id)
    }
    assert by_action["step.reject"]["objectId"] == f"{run_id}:{run['currentStepIndex']}"
    assert "Shorter" in by_action["step.reject"]["detail"]
    assert by_action["member.role"]["objectId"] == member.user_id
    assert "member → admin" in by_action["member.role"]["detail"]
    assert by_action["schedule.change"]["detail"] == "Schedule none → '0 9 * * 1' (UTC)."
    # Newest first, ids strictly falling.
    ids = [event["id"] for event in recorded]
    assert ids == sorted(ids, reverse=True)

    # The run shows who decided its step and who stopped the other run.
    first = await ok(
        await client.get(f"/api/workflows/{workflow_id}/runs/{run_id}", headers=headers)
    )
    decided = first["steps"][run["currentStepIndex"]]["decidedBy"]
    assert decided["actor"] == owner.email
    assert decided["channel"] == "api"
    assert decided["action"] == "step.approve"
    before = first["steps"][: run["currentStepIndex"]]
    assert before
    assert all(step["decidedBy"] is None for step in before)
    assert first["stoppedBy"] is None
    stopped = await ok(
        await client.get(f"/api/workflows/{workflow_id}/runs/{second['runId']}", headers=headers)
    )
    assert stopped["status"] == "failed"
    assert stopped["failureReason"] == "Stopped by user"
    assert stopped["stoppedBy"]["actor"] == owner.email
    assert stopped["stoppedBy"]["action"] == "run.stop"


async def test_dashboard_forms_record_the_dashboard_channel(
    client: httpx.AsyncClient, app: FastAPI, database: Database
) -> None:
    async with browser_factory(app)() as browser:
        browser.headers["User-Agent"] = BROWSER
        owner = await signup(client)
        csrf = await sign_in(browser, owner)
        workflow_id = await draft_on_page(browser, csrf)
        page = f"/dashboard/workflows/{workflow_id}"
        plan = await browser.get(f"{page}/plan")
        assert plan.status_code == 200
        # The plan form as a person sends it: every step, one description reworded.
        shown = await client.get(f"/api/workflows/{workflow_id}", headers=owner.headers)
        steps = shown.json()["workflowSteps"]
        rows: dict[str, str] = {"csrf_token": csrf, "count": str(len(steps))}
        for i, step in enumerate(steps):
            rows[f"description-{i}"] = step["description"] + (" (edited)" if i == 0 else "")
            rows[f"tool-{i}"] = step["toolName"]
            rows[f"input-{i}"] = json.dumps(step["toolInput"])
            if step["requiresApproval"]:
                rows[f"approval-{i}"] = "on"
                rows[f"prompt-{i}"] = step["approvalPrompt"] or ""
        edit = await browser.post(f"{page}/plan", data=rows)
        assert edit.status_code == 303, edit.text
        assert (
            await browser.post(f"{page}/activate", data={"csrf_token": csrf})
        ).status_code == 303
        detail = await client.get(f"/api/workflows/{workflow_id}", headers=owner.headers)
        run_id = detail.json()["workflowRuns"][0]["id"]
        await wait_for_run(client, owner, workflow_id, run_id, "awaiting_approval")
        decided = await browser.post(
            f"{page}/runs/{run_id}/decision", data={"csrf_token": csrf, "action": "approve"}
        )
        assert decided.status_code == 303
        run_page = await browser.get(f"{page}/runs/{run_id}")
        assert f"Approved by {owner.email} · through the dashboard" in run_page.text
        started = await browser.post(f"{page}/run", data={"csrf_token": csrf})
        second = int(started.headers["location"].rsplit("/", 1)[1])
        assert (
            await browser.post(
                f"{page}/runs/{second}/stop", data={"csrf_token": csrf, "confirmed": "1"}
            )
        ).status_code == 303
        stopped_page = await browser.get(f"{page}/runs/{second}")
        assert f"{owner.email} · through the dashboard" in stopped_page.text
        schedule = {"csrf_token": csrf, "schedule": "0 9 * * 1", "timezone": "UTC"}
        assert (await browser.post(f"{page}/schedule", data=schedule)).status_code == 303
        archive = {"csrf_token": csrf, "confirmed": "1"}
        assert (await browser.post(f"{page}/archive", data=archive)).status_code == 303
        core = {"csrf_token": csrf, "value": "Warm."}
        assert (await browser.post("/dashboard/memory/core", data=core)).status_code == 303
        invited = {"csrf_token": csrf, "email": "someone@example.com", "role": "member"}
        assert (await browser.post("/dashboard/team/invitations", data=invited)).status_code == 303
        member = await signup_into(client, database, owner.team_id, Role.MEMBER)
        role = {"csrf_token": csrf, "role": "admin"}
        members = f"/dashboard/team/members/{member.user_id}"
        assert (await browser.post(f"{members}/role", data=role)).status_code == 303
        assert (
            await browser.post(f"{members}/remove", data={"csrf_token": csrf, "confirmed": "1"})
        ).status_code == 303

    recorded = await events(client, owner)
    assert Counter(event["action"] for event in recorded) == Counter(
        [
            "plan.edit",
            "plan.approve",
            "step.approve",
            "run.stop",
            "schedule.change",
            "workflow.archive",
            "memory.create",
            "member.invite",
            "member.role",
            "member.remove",
        ]
    )
    assert {(e["channel"], e["userAgent"], e["actor"]) for e in recorded} == {
        ("dashboard", BROWSER, owner.email)
    }


async def test_email_links_record_the_email_link_channel(
    client: httpx.AsyncClient, app: FastAPI, database: Database, settings: Settings
) -> None:
    owner = await signup(client)
    # A plan link POSTed by whoever holds it: nobody signed in.
    workflow_id = (await create_workflow(client, owner))["workflowId"]
    token = tokens.issue_plan_token(settings, workflow_id=workflow_id, revision=1)
    approved = await client.post(
        f"/api/workflows/{workflow_id}/approve?token={token}", headers={"User-Agent": AGENT}
    )
    assert approved.status_code == 303
    # A step link opened by a browser signed in as an owner: decides, and names them.
    detail = await client.get(f"/api/workflows/{workflow_id}", headers=owner.headers)
    run_id = detail.json()["workflowRuns"][0]["id"]
    run = await wait_for_run(client, owner, workflow_id, run_id, "awaiting_approval")
    client.cookies.set("signoff_session", owner.token)
    decided = await client.get(step_link(settings, run, "approve"), headers=HTML)
    client.cookies.clear()
    assert decided.status_code == 303
    # An invitation accepted through its link, by the invited person.
    invitee_email = "invitee@example.com"
    await ok(
        await client.post(
            f"/api/teams/{owner.team_id}/invitations",
            json={"email": invitee_email, "role": "member"},
            headers=owner.headers,
        ),
        201,
    )
    async with database.read() as session:
        from signoff.models import OutboxMail

        mail = (
            await session.scalars(select(OutboxMail).where(OutboxMail.to_address == invitee_email))
        ).one()
    path = mail.text_body.split("/dashboard/invitations/", 1)[1].split()[0]
    async with browser_factory(app)() as browser:
        browser.headers["User-Agent"] = BROWSER
        joined = await browser.post(
            f"/dashboard/invitations/{path}/signup", data={"password": "correct horse battery"}
        )
        assert joined.status_code == 200, joined.text

    recorded = await events(client, owner)
    linked = [event for event in recorded if event["channel"] == "email_link"]
    assert [(e["action"], e["actor"], e["actorUserId"], e["userAgent"]) for e in linked] == [
        ("member.accept", invitee_email, linked[0]["actorUserId"], BROWSER),
        ("step.approve", owner.email, owner.user_id, HTML["User-Agent"]),
        ("plan.approve", "email link", None, AGENT),
    ]
    assert linked[0]["actorUserId"] is not None
    assert f"Link {tokens.verify_plan(settings, token).jti}." in linked[2]["detail"]
    run_detail = await ok(
        await client.get(f"/api/workflows/{workflow_id}/runs/{run_id}", headers=owner.headers)
    )
    assert run_detail["steps"][run["currentStepIndex"]]["decidedBy"]["channel"] == "email_link"


async def test_a_change_that_rolls_back_records_nothing(
    client: httpx.AsyncClient, database: Database
) -> None:
    owner = await signup(client)
    actor = Actor.person(owner.user_id, owner.email, Channel.API, AGENT)

    async def change_then_fail() -> None:
        async with database.write() as session:
            await memory_service.put(session, owner.team_id, "notes", "Kept?", actor)
            raise RuntimeError("something after the change failed")

    with pytest.raises(RuntimeError):
        await change_then_fail()
    async with database.read() as session:
        assert (await session.scalars(select(AuditEvent))).all() == []
        assert (await session.scalars(select(MemoryEntry))).all() == []
    # A refused change (409: already archived) records nothing either; the first one did.
    workflow_id, run_id = (await create_workflow(client, owner))["workflowId"], None
    assert run_id is None
    first = await client.post(f"/api/workflows/{workflow_id}/archive", headers=owner.headers)
    again = await client.post(f"/api/workflows/{workflow_id}/archive", headers=owner.headers)
    assert (first.status_code, again.status_code) == (200, 409)
    # The last owner cannot leave: refused, nothing recorded.
    leave = await client.post(f"/api/teams/{owner.team_id}/leave", headers=owner.headers)
    assert leave.status_code == 409
    assert [event["action"] for event in await events(client, owner)] == ["workflow.archive"]


async def test_paging_is_stable_and_filters_narrow(
    client: httpx.AsyncClient, database: Database, clock: FrozenClock
) -> None:
    owner = await signup(client)
    for number in range(7):
        value = {"value": f"Note {number}."}
        await ok(await client.put(f"/api/memory/note-{number}", json=value, headers=owner.headers))
        clock.advance(timedelta(minutes=1))
    everything = await events(client, owner)
    assert [event["objectId"] for event in everything] == [f"note-{n}" for n in range(6, -1, -1)]

    first = await ok(await client.get("/api/audit", params={"limit": 3}, headers=owner.headers))
    # Events recorded meanwhile do not shift the pages that follow.
    await ok(await client.put("/api/memory/late", json={"value": "Late."}, headers=owner.headers))
    pages = [first]
    while pages[-1]["nextCursor"]:
        params = {"limit": 3, "cursor": pages[-1]["nextCursor"]}
        pages.append(await ok(await client.get("/api/audit", params=params, headers=owner.headers)))
    paged = [event for page in pages for event in page["events"]]
    assert [len(page["events"]) for page in pages] == [3, 3, 1]
    assert paged == everything

    def selected(found: list[dict[str, Any]]) -> list[str]:
        return [event["objectId"] for event in found]

    assert selected(await events(client, owner, objectType="memory", objectId="note-2")) == [
        "note-2"
    ]
    assert selected(await events(client, owner, action="memory.delete")) == []
    assert len(await events(client, owner, actor=owner.email)) == 8
    assert len(await events(client, owner, actor=owner.user_id)) == 8
    assert await events(client, owner, actor="someone@example.com") == []
    middle = everything[3]["at"]  # note-3
    assert selected(await events(client, owner, until=middle)) == ["note-2", "note-1", "note-0"]
    assert selected(await events(client, owner, since=middle, until=everything[1]["at"])) == [
        "note-4",
        "note-3",
    ]
    for bad in ({"cursor": "not-a-cursor"}, {"cursor": "MTI"}, {"limit": 201}, {"limit": 0}):
        refused = await client.get("/api/audit", params=bad, headers=owner.headers)
        assert refused.status_code == 422, (bad, refused.text)
    naive = await client.get(
        "/api/audit", params={"since": "2025-01-01T00:00:00"}, headers=owner.headers
    )
    assert naive.status_code == 422
    beyond = await client.get(
        "/api/audit", params={"until": "0001-01-01T00:00:00+05:00"}, headers=owner.headers
    )
    assert beyond.status_code == 422


async def test_members_are_refused_and_other_teams_events_are_invisible(
    client: httpx.AsyncClient, database: Database
) -> None:
    owner = await signup(client)
    other = await signup(client)
    await ok(await client.put("/api/memory/mine", json={"value": "A."}, headers=owner.headers))
    await ok(await client.put("/api/memory/theirs", json={"value": "B."}, headers=other.headers))
    member = await signup_into(client, database, owner.team_id, Role.MEMBER)
    admin = await signup_into(client, database, owner.team_id, Role.ADMIN)
    refused = await client.get("/api/audit", headers=member.headers_in(owner.team_id))
    assert refused.status_code == 403
    assert refused.json()["code"] == "forbidden"
    seen = await events(client, admin, owner.team_id)
    assert [event["objectId"] for event in seen] == ["mine"]
    assert [event["objectId"] for event in await events(client, other)] == ["theirs"]
    # Another team's events stay invisible whatever the filter names.
    assert await events(client, other, objectId="mine") == []
    not_in = await client.get("/api/audit", headers=other.headers_in(owner.team_id))
    assert not_in.status_code == 404


async def test_the_memory_tool_records_the_run_as_the_actor(
    client: httpx.AsyncClient, database: Database
) -> None:
    owner = await signup(client)
    run = Actor.run(42)
    async with database.write() as session:
        await memory_service.put(session, owner.team_id, "lead", "From a run.", run)
    [event] = await events(client, owner)
    assert (event["actor"], event["channel"], event["actorUserId"]) == ("run 42", "run", None)
    assert event["action"] == "memory.create"
