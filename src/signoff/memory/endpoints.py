"""Team memory endpoints (reads for every member, writes for admins and owners)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response, status

from signoff.audit.dependencies import CurrentActor
from signoff.auth.dependencies import Auth
from signoff.dependencies import DB
from signoff.memory import repository, service
from signoff.memory.keys import KEY_PATTERN
from signoff.memory.schemas import MemoryEntryOut, MemoryList, MemoryWrite
from signoff.models import Role

router = APIRouter(prefix="/api/memory", tags=["memory"])

Key = Annotated[str, Path(pattern=KEY_PATTERN, description="e.g. `core` (the brand voice)")]


@router.get(
    "",
    operation_id="listMemory",
    summary="List the team's memory",
    response_model=MemoryList,
)
async def list_memory(auth: Auth, db: DB) -> list[MemoryEntryOut]:
    """Every entry of the current team's memory."""
    async with db.read() as session:
        entries = await repository.list_for_team(session, auth.current_team_id)
    return [MemoryEntryOut.model_validate(entry) for entry in entries]


@router.get("/{key}", operation_id="getMemory", summary="Get a memory entry")
async def get_memory(key: Key, auth: Auth, db: DB) -> MemoryEntryOut:
    """One entry of the current team's memory (404 `memory_not_found`)."""
    async with db.read() as session:
        entry = await service.get(session, auth.current_team_id, key)
    return MemoryEntryOut.model_validate(entry)


@router.put("/{key}", operation_id="putMemory", summary="Write a memory entry")
async def put_memory(
    key: Key, body: MemoryWrite, auth: Auth, actor: CurrentActor, db: DB
) -> MemoryEntryOut:
    """Create or replace an entry (admins and owners)."""
    auth.require_role(auth.current_team_id, Role.ADMIN)
    async with db.write() as session:
        entry = await service.put(session, auth.current_team_id, key, body.value, actor)
    return MemoryEntryOut.model_validate(entry)


@router.delete(
    "/{key}",
    status_code=status.HTTP_204_NO_CONTENT,
    operation_id="deleteMemory",
    summary="Delete a memory entry",
)
async def delete_memory(key: Key, auth: Auth, actor: CurrentActor, db: DB) -> Response:
    """Delete an entry (admins and owners; 404 `memory_not_found`)."""
    auth.require_role(auth.current_team_id, Role.ADMIN)
    async with db.write() as session:
        await service.delete(session, auth.current_team_id, key, actor)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
