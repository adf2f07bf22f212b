"""A memory entry written while another request deletes it (PostgreSQL, READ COMMITTED): the
write waits for the delete and then creates the entry again, instead of updating a row that is
gone (a 500)."""

from __future__ import annotations

import pytest
from sqlalchemy import delete

from signoff.config import Settings
from signoff.db import Database
from signoff.memory import repository, service
from signoff.models import MemoryEntry
from tests.support.engine import PERSON, new_owner
from tests.support.postgres import start_until_it_waits

pytestmark = pytest.mark.postgres(only=True)  # SQLite's writes are serial: nothing interleaves


async def test_a_write_that_waited_for_a_delete_creates_the_entry_again(
    database: Database, settings: Settings
) -> None:
    async with database.write() as session:
        _, team = await new_owner(session, settings)
        await service.put(session, team.id, "voice", "Calm.", PERSON)

    async def write() -> None:
        async with database.write() as session:
            await service.put(session, team.id, "voice", "Kind.", PERSON)

    async with database.engine.connect() as deleting, deleting.begin():
        await deleting.execute(
            delete(MemoryEntry).where(MemoryEntry.team_id == team.id, MemoryEntry.key == "voice")
        )
        writing = await start_until_it_waits(database, write(), "the write")
    await writing
    async with database.read() as session:
        entry = await repository.get(session, team.id, "voice")
    assert entry is not None
    assert entry.value == "Kind."
