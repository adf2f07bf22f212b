"""Team memory endpoints (reads for every member, writes for admins and owners)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response, status

from signoff.auth.dependencies import Auth
from signoff.dependencies import DB
from signoff.memory import repository, service
from signoff.memory.schemas import KEY_PATTERN, MemoryEntryOut, MemoryWrite
from signoff.models import Role

router = APIRouter(prefix="/api/memory", tags=["memory"])

Key = Annotated[str, Path(pattern=KEY_PATTERN, description="e.g. `core` (the brand voice)")]


@router.get("")
async def list_memory(auth: Auth, db: DB) -> list[MemoryEntryOut]:
    async with db.read() as session:
        entries = await repository.list_for_team(session, auth.current_team_id)
    return [MemoryEntryOut.model_validate(entry) for entry in entries]


@router.get("/{key}")
async def get_memory(key: Key, auth: Auth, db: DB) -> MemoryEntryOut:
    async with db.read() as session:
        entry = await service.get(session, auth.current_team_id, key)
    return MemoryEntryOut.model_validate(entry)


@router.put("/{key}")
async def put_memory(key: Key, body: MemoryWrite, auth: Auth, db: DB) -> MemoryEntryOut:
    auth.require_role(auth.current_team_id, Role.ADMIN)
    async with db.write() as session:
        entry = await service.put(
            session, auth.current_team_id, key, body.value, updated_by=auth.user_id
        )
    return MemoryEntryOut.model_validate(entry)


@router.delete("/{key}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_memory(key: Key, auth: Auth, db: DB) -> Response:
    auth.require_role(auth.current_team_id, Role.ADMIN)
    async with db.write() as session:
        await service.delete(session, auth.current_team_id, key)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
