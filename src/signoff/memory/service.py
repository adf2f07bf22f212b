"""Memory rules: entries are per team; writes are for admins and owners (checked by callers);
every key written obeys :func:`signoff.memory.keys.check_key`, whoever writes it."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from signoff.errors import ErrorCode, NotFound
from signoff.kit.clock import utc_now
from signoff.memory import repository
from signoff.memory.keys import check_key
from signoff.models import MemoryEntry


async def get(session: AsyncSession, team_id: str, key: str) -> MemoryEntry:
    entry = await repository.get(session, team_id, key)
    if entry is None:
        raise NotFound(f"No memory entry '{key}'.", code=ErrorCode.MEMORY_NOT_FOUND)
    return entry


async def put(
    session: AsyncSession, team_id: str, key: str, value: str, *, updated_by: str | None
) -> MemoryEntry:
    """Create or replace an entry; 422 for a key that breaks the key rules."""
    key = check_key(key)
    entry = await repository.get(session, team_id, key)
    if entry is None:
        entry = MemoryEntry(team_id=team_id, key=key, value=value, updated_by=updated_by)
        session.add(entry)
    else:
        entry.value = value
        entry.updated_by = updated_by
        entry.updated_at = utc_now()
    await session.flush()
    return entry


async def delete(session: AsyncSession, team_id: str, key: str) -> None:
    await session.delete(await get(session, team_id, key))
    await session.flush()
