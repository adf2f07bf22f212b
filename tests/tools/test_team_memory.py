"""The ``memory`` tool's keys: the API's rule (memory/keys.py), no note that reads as ``core``,
and every note it saves can be read and deleted through the API."""

from __future__ import annotations

import httpx
import pytest
from pydantic_ai import RunContext
from pydantic_ai.models.test import TestModel
from pydantic_ai.usage import RunUsage

from signoff.config import Settings
from signoff.db import Database
from signoff.tools.base import ToolContext, ToolResult
from signoff.tools.team_memory import memory
from tests.support.accounts import Account, signup

pytestmark = pytest.mark.postgres

# What a model may send -> the key the note is saved under.
SAVED = {
    "brand-notes": "brand-notes",
    "  Launch.Plan:v2  ": "Launch.Plan:v2",
    "\uff4e\uff4f\uff54\uff45\uff53": "notes",  # fullwidth
    "note\u200b1": "note1",  # a zero-width space inside
    "\u202enote2": "note2",  # a bidi override
    "score": "score",
    "core-notes": "core-notes",
    "n" * 100: "n" * 100,
}
# Every spelling of core (tests/memory/test_keys.py has the full table).
CORE_SPELLINGS = [
    "core",
    "CORE",
    " Core ",
    "c o r e",
    "c\u200bore",
    "\uff43\uff4f\uff52\uff45",
    "\u0441\u043e\u0433\u0435",
    "c\u03bfre",
    "C.O.R.E",
]
INVALID = [
    "bad key",
    "note!",
    "n" * 101,
    "-dash-first",
    "\u043d\u043e\u0442\u0435",
    "a/b",
    "..",
    "?",
]


def tool_context(
    settings: Settings, database: Database, account: Account
) -> RunContext[ToolContext]:
    deps = ToolContext(
        settings=settings,
        db=database,
        team_id=account.team_id,
        workflow_id="wf",
        run_id=1,
        step_index=0,
        attempt=1,
    )
    return RunContext(deps=deps, model=TestModel(), usage=RunUsage())


async def save(ctx: RunContext[ToolContext], key: str) -> ToolResult:
    return await memory(ctx, "save", key=key, value="A note from a run.")


async def test_keys_the_tool_saves_are_the_apis(
    client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    owner = await signup(client)
    ctx = tool_context(settings, database, owner)
    put = await client.put("/api/memory/core", json={"value": "Our voice."}, headers=owner.headers)
    assert put.status_code == 200

    for raw, key in SAVED.items():
        result = await save(ctx, raw)
        assert result.data == {"key": key}, (raw, result.text)
    for raw in INVALID:
        result = await save(ctx, raw)
        assert "Nothing was saved" in result.text, (raw, result.text)
        assert not result.data
    for raw in CORE_SPELLINGS:
        result = await save(ctx, raw)
        assert "core memory can only be changed by a team admin" in result.text, raw
        assert not result.data

    listed = await client.get("/api/memory", headers=owner.headers)
    assert sorted(entry["key"] for entry in listed.json()) == sorted({*SAVED.values(), "core"})
    core = await client.get("/api/memory/core", headers=owner.headers)
    assert core.json()["value"] == "Our voice."
    # The model finds its notes by the key it wrote, as cleaned.
    viewed = await memory(ctx, "view", key="note\u200b1")
    assert viewed.text == "note1:\nA note from a run."
    # Every saved note can be read and deleted through the API.
    for key in SAVED.values():
        got = await client.get(f"/api/memory/{key}", headers=owner.headers)
        assert got.status_code == 200, (key, got.text)
        assert got.json()["value"] == "A note from a run."
        gone = await client.delete(f"/api/memory/{key}", headers=owner.headers)
        assert gone.status_code == 204, key
    remaining = await client.get("/api/memory", headers=owner.headers)
    assert [entry["key"] for entry in remaining.json()] == ["core"]
