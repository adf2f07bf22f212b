"""Reading the database straight, for what the API does not show."""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import func, select

from signoff.db import Database

T = TypeVar("T")


async def count(database: Database, model: type, *where: Any) -> int:
    """The rows of ``model``'s table (those matching every ``where`` clause)."""
    async with database.read() as session:
        query = select(func.count()).select_from(model)
        for clause in where:
            query = query.where(clause)
        return int(await session.scalar(query) or 0)


async def stored(database: Database, model: type[T], key: Any) -> T:
    """The row of ``model`` with primary key ``key``, which must exist."""
    async with database.read() as session:
        found = await session.get(model, key)
    assert found is not None, f"no {model.__name__} {key!r}"
    return found
