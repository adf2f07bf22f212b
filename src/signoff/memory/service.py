"""Memory rules: entries are per team; writes are for admins and owners (checked by callers);
every key written obeys :func:`signoff.memory.keys.check_key`, whoever writes it."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from signoff.audit.service import Actor, record
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


def _record(
    session: AsyncSession, actor: Actor, team_id: str, action: str, key: str, detail: str
) -> None:
    record(
        session,
        actor,
        team_id=team_id,
        action=action,
        object_type="memory",
        object_id=key,
        detail=detail,
    )


async def put(
    session: AsyncSession, team_id: str, key: str, value: str, actor: Actor
) -> MemoryEntry:
    """Create or replace an entry; the audit trail records which, and who (a person, or the
    run whose memory tool saved a note)."""
    key = check_key(key)
    detail = f"'{key}': {len(value):,} characters."
    entry = await repository.lock(session, team_id, key)
    if entry is None:
        entry = await _created(session, team_id, key, value, actor)
        if entry is not None:
            _record(session, actor, team_id, "memory.create", key, detail)
            return entry
        # A concurrent write created the key first (PostgreSQL): this one replaces its value.
        entry = await repository.lock(session, team_id, key)
        assert entry is not None
    entry.value = value
    entry.updated_by = actor.user_id
    entry.updated_at = utc_now()
    await session.flush()
    _record(session, actor, team_id, "memory.update", key, detail)
    return entry


async def _created(
    session: AsyncSession, team_id: str, key: str, value: str, actor: Actor
) -> MemoryEntry | None:
    """A new entry, or None when another transaction inserted the key meanwhile (the unique
    key decided; the savepoint keeps this transaction usable)."""
    try:
        async with session.begin_nested():
            entry = MemoryEntry(team_id=team_id, key=key, value=value, updated_by=actor.user_id)
            session.add(entry)
    except IntegrityError:
        return None
    return entry


async def delete(session: AsyncSession, team_id: str, key: str, actor: Actor) -> None:
    await session.delete(await get(session, team_id, key))
    await session.flush()
    _record(session, actor, team_id, "memory.delete", key, f"'{key}' deleted.")
