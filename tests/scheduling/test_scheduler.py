"""The scheduler: each due time fires exactly once, in the user's timezone (SPEC §8)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from signoff.config import Settings
from signoff.db import Database
from signoff.kit.clock import FrozenClock
from signoff.models import Run, ScheduleFire, Workflow
from signoff.scheduling import service as scheduling
from tests.support.accounts import Account, signup
from tests.support.db import count, stored
from tests.support.workflows import create_workflow, wait_for_run

pytestmark = pytest.mark.postgres


async def scheduled_workflow(
    client: httpx.AsyncClient, account: Account, schedule: str, tool: str = "llm_response"
) -> dict[str, Any]:
    """An active workflow with a one-step plan; its approval run is left to finish or wait."""
    created = await create_workflow(
        client, account, "Summarise our week", schedule=schedule, timezone="Europe/Paris"
    )
    workflow_id = created["workflowId"]
    step = {"description": "Say something useful", "toolName": tool}
    replaced = await client.post(
        f"/api/workflows/{workflow_id}/steps",
        json={"mode": "replace", "steps": [step]},
        headers=account.headers,
    )
    assert replaced.status_code == 200
    activated = await client.post(f"/api/workflows/{workflow_id}/activate", headers=account.headers)
    assert activated.status_code == 200
    body: dict[str, Any] = activated.json()
    final = "awaiting_approval" if tool == "generate_image" else "completed"
    await wait_for_run(client, account, workflow_id, body["workflowRuns"][0]["id"], final)
    return body


async def fires(database: Database, workflow_id: str) -> list[ScheduleFire]:
    async with database.read() as session:
        rows = await session.scalars(
            select(ScheduleFire)
            .where(ScheduleFire.workflow_id == workflow_id)
            .order_by(ScheduleFire.due_at, ScheduleFire.id)
        )
        return list(rows)


async def settle(app: FastAPI) -> None:
    """Let the inline engine finish what the tick queued."""
    await asyncio.sleep(0)
    await app.state.queue.idle()


async def test_every_five_minutes_for_an_hour_fires_twelve_times(
    app: FastAPI, client: httpx.AsyncClient, database: Database, clock: FrozenClock
) -> None:
    account = await signup(client)
    workflow = await scheduled_workflow(client, account, "*/5 * * * *")
    assert workflow["nextRunAt"].startswith("2026-03-02T09:05:00")
    assert workflow["scheduleDescription"] == "Every 5 minutes"
    for _ in range(60):
        clock.advance(timedelta(minutes=1))  # shorter than the grace period
        await app.state.runtime.schedule_tick()
        await settle(app)
    log = await fires(database, workflow["id"])
    assert [fire.outcome.value for fire in log] == ["started"] * 12
    assert [fire.due_at.minute for fire in log] == [5, 10, 15, 20, 25, 30, 35, 40, 45, 50, 55, 0]
    assert (
        await count(database, Run, Run.workflow_id == workflow["id"]) == 13
    )  # the approval run + 12 fires
    api = await client.get(f"/api/workflows/{workflow['id']}/fires", headers=account.headers)
    assert len(api.json()) == 12
    assert api.json()[0]["outcome"] == "started"
    assert api.json()[0]["runId"] is not None


async def test_fires_are_skipped_while_a_run_waits_for_approval(
    app: FastAPI, client: httpx.AsyncClient, database: Database, clock: FrozenClock
) -> None:
    account = await signup(client)
    workflow = await scheduled_workflow(client, account, "*/5 * * * *", tool="generate_image")
    for _ in range(15):
        clock.advance(timedelta(minutes=1))
        await app.state.runtime.schedule_tick()
        await settle(app)
    log = await fires(database, workflow["id"])
    assert [fire.outcome.value for fire in log] == ["skipped"] * 3
    assert all(fire.run_id is None for fire in log)
    assert await count(database, Run, Run.workflow_id == workflow["id"]) == 1


async def test_downtime_logs_missed_fires_and_one_catch_up_run(
    app: FastAPI, client: httpx.AsyncClient, database: Database, clock: FrozenClock
) -> None:
    account = await signup(client)
    workflow = await scheduled_workflow(client, account, "0 * * * *")
    clock.advance(timedelta(hours=2, minutes=30))  # down from 09:00 to 11:30 UTC
    await app.state.runtime.schedule_tick()
    await settle(app)
    log = await fires(database, workflow["id"])
    missed = [fire for fire in log if fire.outcome.value == "missed"]
    catch_up = [fire for fire in log if fire.catch_up]
    assert len(missed) == 2
    assert [f.due_at for f in missed] == [
        datetime(2026, 3, 2, 10, 0, tzinfo=UTC),
        datetime(2026, 3, 2, 11, 0, tzinfo=UTC),
    ]
    assert len(catch_up) == 1
    assert catch_up[0].outcome.value == "started"
    assert catch_up[0].run_id is not None
    assert len(log) == 3
    assert (await stored(database, Workflow, workflow["id"])).next_run_at == datetime(
        2026, 3, 2, 12, 0, tzinfo=UTC
    )


async def test_two_schedulers_fire_each_due_time_once(
    app: FastAPI,
    client: httpx.AsyncClient,
    database: Database,
    database_url: str,
    settings: Settings,
    clock: FrozenClock,
) -> None:
    account = await signup(client)
    workflow = await scheduled_workflow(client, account, "*/5 * * * *")
    other = Database.from_url(database_url)  # a second process's own connections
    try:
        for _ in range(60):
            clock.advance(timedelta(minutes=1))
            results = await asyncio.gather(
                scheduling.tick(database, settings), scheduling.tick(other, settings)
            )
            for result in (r for batch in results for r in batch):
                if result.job is not None:
                    await app.state.queue.enqueue(result.job)
            await settle(app)
    finally:
        await other.dispose()
    log = await fires(database, workflow["id"])
    assert len(log) == 12
    assert len({fire.due_at for fire in log}) == 12
    assert {fire.outcome.value for fire in log} == {"started"}


async def test_schedule_changes_rearm_and_validate(
    client: httpx.AsyncClient, database: Database, clock: FrozenClock
) -> None:
    account = await signup(client)
    workflow = await scheduled_workflow(client, account, "0 9 * * MON")
    path = f"/api/workflows/{workflow['id']}"
    # 09:00 Monday in Paris is 08:00 UTC; the clock stands at 09:00 UTC on Monday 2 March.
    assert workflow["nextRunAt"].startswith("2026-03-09T08:00:00")
    changed = await client.patch(
        path,
        json={"schedule": "30 7 * * *", "timezone": "America/New_York"},
        headers=account.headers,
    )
    assert changed.status_code == 200
    assert changed.json()["nextRunAt"].startswith("2026-03-02T12:30:00")
    assert changed.json()["scheduleDescription"] == "At 07:30"
    for bad in ({"schedule": "61 * * * *"}, {"timezone": "Nowhere/City"}, {"schedule": "* *"}):
        response = await client.patch(path, json=bad, headers=account.headers)
        assert response.status_code == 422
    after = (await client.get(path, headers=account.headers)).json()
    assert after["schedule"] == "30 7 * * *"
    assert after["timezone"] == "America/New_York"
    removed = await client.patch(path, json={"schedule": None}, headers=account.headers)
    assert removed.json()["schedule"] is None
    assert removed.json()["nextRunAt"] is None
    await client.patch(path, json={"schedule": "0 8 * * *"}, headers=account.headers)
    archived = await client.post(f"{path}/archive", headers=account.headers)
    assert archived.json()["nextRunAt"] is None
    assert (
        await client.patch(path, json={"schedule": "0 9 * * *"}, headers=account.headers)
    ).status_code == 409


async def test_invalid_schedule_on_create_is_422_and_saves_nothing(
    client: httpx.AsyncClient, database: Database
) -> None:
    account = await signup(client)
    for body in ({"goal": "x", "schedule": "0 25 * * *"}, {"goal": "x", "timezone": "Mars/Base"}):
        response = await client.post("/api/workflows", json=body, headers=account.headers)
        assert response.status_code == 422
    assert await count(database, Workflow) == 0


async def test_drafts_are_not_armed(client: httpx.AsyncClient) -> None:
    account = await signup(client)
    created = await client.post(
        "/api/workflows", json={"goal": "x", "schedule": "*/5 * * * *"}, headers=account.headers
    )
    detail = (
        await client.get(f"/api/workflows/{created.json()['workflowId']}", headers=account.headers)
    ).json()
    assert detail["nextRunAt"] is None
    assert detail["scheduleDescription"] == "Every 5 minutes"
