"""GET /api/runs: the team's runs across workflows, filtered, a page at a time (one statement
a page), behind an opaque cursor; another team's are never shown."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import event

from signoff.db import Database
from signoff.models import Conversation, Run, RunStatus, RunTrigger
from tests.support.accounts import Account, signup
from tests.support.workflows import GOAL, SEED_GOAL, paused_run

pytestmark = pytest.mark.postgres

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


async def workflow_with_runs(
    client: httpx.AsyncClient, database: Database, account: Account, goal: str, count: int
) -> tuple[str, list[int]]:
    """An active workflow whose run 1 was stopped, and ``count`` more ended runs, started an
    hour apart from T0 (failed every third, by schedule every other). Their ids, oldest first."""
    paused = await paused_run(client, account, goal)
    workflow_id = paused["workflowId"]
    stopped = await client.post(
        f"/api/workflows/{workflow_id}/runs/{paused['id']}/stop", headers=account.headers
    )
    assert stopped.status_code == 200
    ids = []
    async with database.write() as session:
        for number in range(2, count + 2):
            chat = Conversation(team_id=account.team_id, workflow_id=workflow_id)
            session.add(chat)
            await session.flush()
            run = Run(
                workflow_id=workflow_id,
                team_id=account.team_id,
                run_number=number,
                status=RunStatus.FAILED if number % 3 == 0 else RunStatus.COMPLETED,
                trigger=RunTrigger.SCHEDULE if number % 2 == 0 else RunTrigger.MANUAL,
                conversation_id=chat.id,
                plan_revision=1,
                step_count=3,
                started_at=T0 + timedelta(hours=number),
                finished_at=T0 + timedelta(hours=number, minutes=5),
            )
            session.add(run)
            await session.flush()
            ids.append(run.id)
    return workflow_id, [paused["id"], *ids]


async def all_pages(
    client: httpx.AsyncClient, account: Account, **params: Any
) -> list[dict[str, Any]]:
    runs: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        response = await client.get("/api/runs", params=query, headers=account.headers)
        assert response.status_code == 200, response.text
        page = response.json()
        runs.extend(page["runs"])
        cursor = page["nextCursor"]
        if cursor is None:
            return runs


async def test_paging_and_filters(client: httpx.AsyncClient, database: Database) -> None:
    account = await signup(client)
    seed_id, seed_runs = await workflow_with_runs(client, database, account, SEED_GOAL, 7)
    launch_id, launch_runs = await workflow_with_runs(client, database, account, GOAL, 4)
    everything = await all_pages(client, account, limit=3)
    # Newest first across both workflows (run 1 of each started now, the others in 2026-03);
    # each run once.
    assert len(everything) == 13
    assert len({run["id"] for run in everything}) == 13
    started = [run["startedAt"] for run in everything]
    assert started == sorted(started, reverse=True)
    assert {run["workflowId"] for run in everything} == {seed_id, launch_id}
    titles = {run["workflowId"]: run["workflowTitle"] for run in everything}
    assert all(titles.values())
    # The default page is 50; the first page of 3 names a cursor.
    first = (await client.get("/api/runs", params={"limit": 3}, headers=account.headers)).json()
    assert len(first["runs"]) == 3
    assert first["nextCursor"]
    assert len((await client.get("/api/runs", headers=account.headers)).json()["runs"]) == 13

    async def ids(**params: Any) -> set[int]:
        return {run["id"] for run in await all_pages(client, account, limit=2, **params)}

    assert await ids(workflowId=launch_id) == set(launch_runs)
    failed = await ids(status="failed")
    # The two stopped runs 1, runs 3 and 6 of the seed workflow, run 3 of the launch one.
    assert failed == {seed_runs[0], seed_runs[2], seed_runs[5], launch_runs[0], launch_runs[2]}
    assert await ids(status="failed", workflowId=seed_id) == {
        seed_runs[0],
        seed_runs[2],
        seed_runs[5],
    }
    assert await ids(trigger="schedule", workflowId=launch_id) == {launch_runs[1], launch_runs[3]}
    assert await ids(trigger="approval") == {seed_runs[0], launch_runs[0]}
    window = {"startedFrom": "2026-03-01T12:00:00Z", "startedBefore": "2026-03-01T14:00:00"}
    assert await ids(**window) == {seed_runs[2], launch_runs[2], seed_runs[3], launch_runs[3]}
    assert await ids(startedFrom="2026-03-02") == {seed_runs[0], launch_runs[0]}
    # Search in the title or the goal, in any case; % and _ are letters, not patterns.
    assert await ids(q="ai NEWS") == set(seed_runs)
    assert await ids(q="spring product") == set(launch_runs)
    assert await ids(q="%") == set()
    assert await ids(q="news", status="completed") == {seed_runs[i] for i in (1, 3, 4, 6, 7)}


async def test_bad_input_is_422(client: httpx.AsyncClient) -> None:
    account = await signup(client)
    for params in (
        {"limit": 0},
        {"limit": 201},
        {"cursor": "12"},
        {"cursor": "not a cursor"},
        {"cursor": "cnVuc3wxfDA"},  # "runs|1|0": id 0
        {"status": "paused"},
        {"trigger": "api"},
        {"startedFrom": "yesterday"},
        {"startedFrom": "0001-01-01T00:00:00+05:00"},  # before year 1 in UTC
        {"startedBefore": "9999-12-31T23:59:59-05:00"},  # after year 9999 in UTC
    ):
        response = await client.get("/api/runs", params=params, headers=account.headers)
        assert response.status_code == 422, (params, response.text)
    assert (
        await client.get("/api/runs", params={"limit": 200}, headers=account.headers)
    ).is_success


async def test_one_statement_a_page(client: httpx.AsyncClient, database: Database) -> None:
    account = await signup(client)
    await workflow_with_runs(client, database, account, SEED_GOAL, 30)
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    engine = database.engine.sync_engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        for limit in (2, 30):
            statements.clear()
            response = await client.get(
                "/api/runs", params={"limit": limit}, headers=account.headers
            )
            assert len(response.json()["runs"]) == limit
            reading_runs = [s for s in statements if "FROM runs" in s]
            assert len(reading_runs) == 1, reading_runs
    finally:
        event.remove(engine, "before_cursor_execute", count)


async def test_another_teams_runs_are_not_listed(
    client: httpx.AsyncClient, database: Database
) -> None:
    owner = await signup(client)
    outsider = await signup(client)
    workflow_id, _ = await workflow_with_runs(client, database, owner, SEED_GOAL, 2)
    assert len(await all_pages(client, owner)) == 3
    assert await all_pages(client, outsider) == []
    hidden = await client.get(
        "/api/runs", params={"workflowId": workflow_id}, headers=outsider.headers
    )
    assert hidden.status_code == 404
    assert hidden.json()["code"] == "workflow_not_found"
