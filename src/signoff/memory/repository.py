"""Queries for team memory."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from signoff.models import MemoryEntry


async def list_for_team(session: AsyncSession, team_id: str) -> Sequence[MemoryEntry]:
    result = await session.scalars(
        select(MemoryEntry).where(MemoryEntry.team_id == team_id).order_by(MemoryEntry.key)
    )
    return result.all()


async def get(session: AsyncSession, team_id: str, key: str) -> MemoryEntry | None:
    return await session.get(MemoryEntry, (team_id, key))


async def lock(session: AsyncSession, team_id: str, key: str) -> MemoryEntry | None:
    """The entry, locked and read afresh (PostgreSQL; SQLite's writes are serial): a write
    waits for a delete or a write in progress, and then sees what it left (None once deleted)."""
    return await session.scalar(
        select(MemoryEntry)
        .where(MemoryEntry.team_id == team_id, MemoryEntry.key == key)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
