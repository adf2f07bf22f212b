"""Fixtures every test module uses.

- ``database``: a fresh database per test. Every test runs on SQLite; a test marked
  ``@pytest.mark.postgres`` runs on PostgreSQL as well (one migrated database per test session
  and xdist worker, emptied between tests); ``@pytest.mark.postgres(only=True)``, about
  something SQLite does not have, runs on PostgreSQL alone. With no PostgreSQL server
  reachable, that half is skipped with a loud notice, except under ``CI=true``, where it fails.
- ``settings``, ``app``, ``client``: the application as users get it, over ASGI.
- ``clock``: a frozen clock the test moves by hand.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from pydantic_ai import models as llm_models
from sqlalchemy import text
from sqlalchemy.engine import make_url

from signoff.app import create_app
from signoff.config import Settings
from signoff.db import Database
from signoff.kit.clock import FrozenClock, use_clock
from signoff.migrations.runner import upgrade
from signoff.models import Base

pytest_plugins = ["tests.fakes.smtp", "tests.fakes.openai"]

# No test talks to a real LLM provider; tests of the wire protocol turn requests back on
# (pydantic_ai.models.override_allow_model_requests) around a local fake server.
llm_models.ALLOW_MODEL_REQUESTS = False

POSTGRES_URL = os.environ.get(
    "SIGNOFF_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
IN_CI = os.environ.get("CI", "").lower() == "true"
_postgres_notice: list[str] = []


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" in metafunc.fixturenames:
        backends = ["sqlite"]
        marker = metafunc.definition.get_closest_marker("postgres")
        if marker:
            backends = ["postgresql"] if marker.kwargs.get("only") else [*backends, "postgresql"]
        metafunc.parametrize("backend", backends, scope="function")


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _postgres_notice:
        terminalreporter.write_sep("!", "PostgreSQL tests were SKIPPED", red=True, bold=True)
        terminalreporter.write_line(_postgres_notice[0], red=True)


def _server_reachable(url: str) -> str | None:
    try:
        with psycopg.connect(url, connect_timeout=3):
            return None
    except psycopg.Error as exc:
        return str(exc).strip()


@pytest.fixture(scope="session")
def postgres_database_url(worker_id: str) -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for this test session (and xdist worker)."""
    problem = _server_reachable(POSTGRES_URL)
    if problem is not None:
        message = f"No PostgreSQL server at {POSTGRES_URL}: {problem}"
        if IN_CI:
            pytest.fail(f"{message} (CI=true: PostgreSQL tests must run)")
        _postgres_notice.append(message + " — set SIGNOFF_TEST_POSTGRES_URL or start one.")
        pytest.skip(message)
    name = f"signoff_test_{worker_id}_{os.getpid()}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    url = make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    upgrade(url)
    try:
        yield url
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def database_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if backend == "postgresql":
        url: str = request.getfixturevalue("postgres_database_url")
        return url
    return f"sqlite+aiosqlite:///{tmp_path}/signoff.db"


@pytest.fixture
async def database(backend: str, database_url: str) -> AsyncIterator[Database]:
    db = Database.from_url(database_url)
    if backend == "sqlite":
        # A new file per test; the migration tests prove Alembic builds this same schema.
        async with db.engine.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)
    try:
        yield db
    finally:
        if backend == "postgresql":
            tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
            async with db.engine.begin() as conn:
                await conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        await db.dispose()


def make_settings(tmp_path: Path, database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": tmp_path / "data",
        "database_url": database_url,
        "base_url": "http://testserver",
        "token_secret": "test-secret-" + "x" * 40,
        # Cheap hashes keep hundreds of signups fast; production keeps the real cost.
        "password_time_cost": 1,
        "password_memory_kib": 64,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    """Override in a module or test to change settings for the ``app`` fixture."""
    return {}


@pytest.fixture
def settings(tmp_path: Path, database_url: str, settings_overrides: dict[str, Any]) -> Settings:
    return make_settings(tmp_path, database_url, **settings_overrides)


@pytest.fixture
async def app(settings: Settings, database: Database) -> AsyncIterator[FastAPI]:
    application = create_app(settings, db=database)
    async with LifespanManager(application):
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


@pytest.fixture
def clock() -> Iterator[FrozenClock]:
    frozen = FrozenClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
    use_clock(frozen)
    try:
        yield frozen
    finally:
        use_clock(None)
