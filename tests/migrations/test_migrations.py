"""Alembic builds exactly the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection

from signoff.db import create_engine
from signoff.migrations.runner import downgrade, include_name, upgrade
from signoff.models import Base
from tests.support.postgres import fresh_postgres_database


def _diff(connection: Connection) -> list[object]:
    context = MigrationContext.configure(
        connection, opts={"compare_type": True, "include_name": include_name}
    )
    return list(compare_metadata(context, Base.metadata))


async def _schema_diff(url: str) -> list[object]:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(_diff)
    finally:
        await engine.dispose()


async def test_sqlite_migrations_match_models_and_downgrade(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/m.db"
    await asyncio.to_thread(upgrade, url)
    assert await _schema_diff(url) == []
    await asyncio.to_thread(downgrade, url, "base")
    await asyncio.to_thread(upgrade, url)  # and up again from nothing
    assert await _schema_diff(url) == []


async def test_postgres_migrations_match_models() -> None:
    # The session database was migrated by its fixture; check a throwaway one from nothing.
    with fresh_postgres_database("migrations", migrated=False) as url:
        await asyncio.to_thread(upgrade, url)
        assert await _schema_diff(url) == []
        await asyncio.to_thread(downgrade, url, "base")
        await asyncio.to_thread(upgrade, url)
        assert await _schema_diff(url) == []


async def test_0012_describes_the_schedules_already_stored(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    url = f"sqlite+aiosqlite:///{path}"
    await asyncio.to_thread(upgrade, url, "0011")
    with sqlite3.connect(path) as connection:  # no foreign keys: a workflow alone will do
        for workflow_id, schedule in (("w1", "0 9 * * MON"), ("w2", None)):
            connection.execute(
                "INSERT INTO workflows (id, team_id, title, goal, status, schedule, timezone, "
                "plan_revision, planned_by, created_at, updated_at) VALUES "
                "(?, 't', 'T', 'G', 'active', ?, 'UTC', 1, '', '2026-01-01', '2026-01-01')",
                (workflow_id, schedule),
            )
    await asyncio.to_thread(upgrade, url)
    with sqlite3.connect(path) as connection:
        rows = connection.execute(
            "SELECT id, schedule_description FROM workflows ORDER BY id"
        ).fetchall()
    assert rows == [("w1", "At 09:00, only on Monday"), ("w2", None)]
