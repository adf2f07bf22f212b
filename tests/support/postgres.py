"""The PostgreSQL server of the tests (``SIGNOFF_TEST_POSTGRES_URL``, by default the local one
as user postgres) and fresh databases on it.

Without a reachable server, PostgreSQL tests are skipped with a loud notice at the end of the
run (:data:`NOTICES`, printed by tests/conftest.py), except under ``CI=true``, where they fail.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from signoff.db import Database
from signoff.migrations.runner import upgrade
from tests.support.waiting import wait_until

POSTGRES_URL = os.environ.get(
    "SIGNOFF_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
T = TypeVar("T")
IN_CI = os.environ.get("CI", "").lower() == "true"
NOTICES: list[str] = []


def _server_problem(url: str) -> str | None:
    try:
        with psycopg.connect(url, connect_timeout=3):
            return None
    except psycopg.Error as exc:
        return str(exc).strip()


def require_postgres() -> None:
    """Skip loudly without a PostgreSQL server (fail under CI=true)."""
    problem = _server_problem(POSTGRES_URL)
    if problem is None:
        return
    message = f"No PostgreSQL server at {POSTGRES_URL}: {problem}"
    if IN_CI:
        pytest.fail(f"{message} (CI=true: PostgreSQL tests must run)")
    NOTICES.append(message + " — set SIGNOFF_TEST_POSTGRES_URL or start one.")
    pytest.skip(message)


@contextmanager
def fresh_postgres_database(label: str, *, migrated: bool = True) -> Iterator[str]:
    """A new database, migrated to head (procrastinate's schema included) unless
    ``migrated=False``; dropped at the end."""
    require_postgres()
    name = f"signoff_{label}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    try:
        if migrated:
            upgrade(url)
        yield url
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def libpq(url: str) -> str:
    """``url`` as psycopg takes it (no SQLAlchemy driver name)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def _someone_waits_for_a_lock(database: Database) -> bool:
    async with database.engine.connect() as connection:
        waiting = await connection.scalar(
            text(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
        )
    return bool(waiting)


async def start_until_it_waits(
    database: Database, work: Coroutine[Any, Any, T], what: str
) -> asyncio.Task[T]:
    """Start ``work`` and return once a connection to ``database`` (PostgreSQL) waits for a
    lock: the statement under test has reached the lock the caller's transaction holds. The
    caller commits, then awaits the task."""
    task = asyncio.create_task(work)
    await wait_until(lambda: _someone_waits_for_a_lock(database), f"{what} to wait for a lock")
    return task
