"""A password hash (a fifth of a second of CPU at the production cost) holds no transaction:
a flood of anonymous signups does not keep a signed-in person's write waiting behind it
(auth/passwords.py, auth/service.py)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from tests.support.accounts import signup

FLOOD = 16


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    # Slow enough that the flood takes a while on two cores, cheap enough for the suite.
    return {"password_time_cost": 2, "password_memory_kib": 16 * 1024}


async def test_a_write_does_not_wait_for_a_flood_of_signups(client: httpx.AsyncClient) -> None:
    owner = await signup(client)
    flood = [
        asyncio.create_task(
            client.post(
                "/api/auth/signup", json={"email": f"flood{n}@example.com", "password": "x" * 12}
            )
        )
        for n in range(FLOOD)
    ]
    await asyncio.sleep(0)  # every signup has started
    saved = await client.put("/api/memory/note", json={"value": "x"}, headers=owner.headers)
    finished_first = sum(task.done() for task in flood)
    assert saved.status_code == 200
    # Signups that held the write turn while hashing would all have gone first.
    assert finished_first < FLOOD // 2, finished_first
    assert [answer.status_code for answer in await asyncio.gather(*flood)] == [201] * FLOOD
