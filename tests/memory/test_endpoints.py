"""Team memory endpoints; the core entry feeds the planner."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from signoff.db import Database
from signoff.models import Role
from tests.support.accounts import signup, signup_into

pytestmark = pytest.mark.postgres


async def test_memory_crud_roles_and_tenancy(client: httpx.AsyncClient, database: Database) -> None:
    owner = await signup(client)
    member = await signup_into(client, database, owner.team_id, Role.MEMBER)
    stranger = await signup(client)
    as_member = member.headers_in(owner.team_id)

    put = await client.put(
        "/api/memory/core", json={"value": "Warm, plain English. No hype."}, headers=owner.headers
    )
    assert put.status_code == 200
    assert put.json()["key"] == "core"
    assert put.json()["updatedBy"] == owner.user_id
    got = await client.get("/api/memory/core", headers=as_member)
    assert got.status_code == 200
    assert got.json()["value"] == "Warm, plain English. No hype."
    assert [
        entry["key"] for entry in (await client.get("/api/memory", headers=as_member)).json()
    ] == ["core"]
    # Members read but do not write; other teams see nothing.
    denied = await client.put("/api/memory/core", json={"value": "Shout!"}, headers=as_member)
    assert denied.status_code == 403
    assert (await client.delete("/api/memory/core", headers=as_member)).status_code == 403
    assert (await client.get("/api/memory/core", headers=stranger.headers)).status_code == 404
    assert (await client.get("/api/memory", headers=stranger.headers)).json() == []
    # Validation.
    assert (
        await client.put("/api/memory/core", json={"value": ""}, headers=owner.headers)
    ).status_code == 422
    assert (
        await client.put("/api/memory/bad key!", json={"value": "x"}, headers=owner.headers)
    ).status_code == 422
    # Delete.
    assert (await client.delete("/api/memory/core", headers=owner.headers)).status_code == 204
    assert (await client.get("/api/memory/core", headers=owner.headers)).status_code == 404
    assert (await client.delete("/api/memory/core", headers=owner.headers)).status_code == 404


async def test_concurrent_writes_of_a_new_key_all_succeed(client: httpx.AsyncClient) -> None:
    owner = await signup(client)
    values = [f"Note {n}" for n in range(8)]
    answers = await asyncio.gather(
        *(
            client.put("/api/memory/launch-notes", json={"value": v}, headers=owner.headers)
            for v in values
        )
    )
    assert [answer.status_code for answer in answers] == [200] * len(values)
    kept = await client.get("/api/memory/launch-notes", headers=owner.headers)
    assert kept.json()["value"] in values  # the last write wins, whichever it was
    events = await client.get("/api/audit", params={"objectType": "memory"}, headers=owner.headers)
    actions = sorted(event["action"] for event in events.json()["events"])
    assert actions == ["memory.create"] + ["memory.update"] * (len(values) - 1)
