"""A memory entry written while another request deletes it (PostgreSQL, READ COMMITTED): the
write waits for the delete and then creates the entry again, instead of updating a row that is
gone (a 500)."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import delete

from signoff.auth import service as auth_service
from signoff.config import Settings
from signoff.db import Database
from signoff.kit.ids import new_id
from signoff.memory import repository, service
from signoff.models import MemoryEntry
from tests.support.engine import PERSON
from tests.support.postgres import someone_waits_for_a_lock
from tests.support.waiting import wait_until

pytestmark = pytest.mark.postgres(only=True)  # SQLite's writes are serial: nothing interleaves


async def test_a_write_that_waited_for_a_delete_creates_the_entry_again(
    database: Database, settings: Settings
) -> None:
    async with database.write() as session:
        _, team = await auth_service.signup(
            session,
            settings,
            email=f"{new_id()}@example.com",
            password_hash="not-a-real-hash",
            name="Owner",
        )
        await service.put(session, team.id, "voice", "Calm.", PERSON)

    async def write() -> None:
        async with database.write() as session:
            await service.put(session, team.id, "voice", "Kind.", PERSON)

    async with database.engine.connect() as deleting, deleting.begin():
        await deleting.execute(
            delete(MemoryEntry).where(MemoryEntry.team_id == team.id, MemoryEntry.key == "voice")
        )
        writing = asyncio.create_task(write())
        await wait_until(lambda: someone_waits_for_a_lock(database), "the write to wait")
    await writing
    async with database.read() as session:
        entry = await repository.get(session, team.id, "voice")
    assert entry is not None
    assert entry.value == "Kind."
