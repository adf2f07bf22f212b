"""Fixtures every test module uses.

- ``database``: a fresh database per test. Every test runs on SQLite; a test marked
  ``@pytest.mark.postgres`` runs on PostgreSQL as well (one migrated database per test session
  and xdist worker, emptied between tests); ``@pytest.mark.postgres(only=True)``, about
  something SQLite does not have, runs on PostgreSQL alone. With no PostgreSQL server
  reachable, that half is skipped with a loud notice, except under ``CI=true``, where it fails.
- ``settings``, ``app``, ``client``: the application as users get it, over ASGI.
- ``clock``: a frozen clock the test moves by hand.
- ``smtp_server``, ``fake_openai``: a real SMTP server and a real OpenAI-compatible server on
  127.0.0.1; ``web``, ``listener``, ``connect_attempts``, ``certificate``: the local web of the
  tools' and safe_http's tests.

What these fixtures are built from (and every other helper) is in ``tests/support/``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from pydantic_ai import models as llm_models
from sqlalchemy import text

from signoff.app import create_app
from signoff.config import Settings
from signoff.db import Database
from signoff.kit.clock import FrozenClock, use_clock
from signoff.kit.safe_http import allow_loopback_for_tests
from signoff.models import Base
from tests.support import processes
from tests.support.fakeweb import FakeWeb, Listener, recording_connections, self_signed_certificate
from tests.support.openai_fake import FakeOpenAI, running_fake_openai
from tests.support.postgres import NOTICES, fresh_postgres_database
from tests.support.settings import make_settings
from tests.support.smtp import FakeSmtpServer, running_smtp_server

# No test talks to a real LLM provider; tests of the wire protocol turn requests back on
# (pydantic_ai.models.override_allow_model_requests) around a local fake server.
llm_models.ALLOW_MODEL_REQUESTS = False


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" in metafunc.fixturenames:
        backends = ["sqlite"]
        marker = metafunc.definition.get_closest_marker("postgres")
        if marker:
            backends = ["postgresql"] if marker.kwargs.get("only") else [*backends, "postgresql"]
        metafunc.parametrize("backend", backends, scope="function")


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    # Before the test's fixtures: those may start processes (tests.support.processes).
    processes.set_marked(item.get_closest_marker("processes") is not None)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if NOTICES:
        terminalreporter.write_sep("!", "PostgreSQL tests were SKIPPED", red=True, bold=True)
        terminalreporter.write_line(NOTICES[0], red=True)


@pytest.fixture(scope="session")
def postgres_database_url(worker_id: str) -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for this test session (and xdist worker)."""
    with fresh_postgres_database(f"test_{worker_id}") as url:
        yield url


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


@pytest.fixture
def smtp_server() -> Iterator[FakeSmtpServer]:
    """A running SMTP server on 127.0.0.1 for one test; stopped afterwards."""
    with running_smtp_server() as server:
        yield server


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAI]:
    """A running fake OpenAI server on 127.0.0.1 for one test; its ``base_url`` ends in ``/v1``."""
    with running_fake_openai() as fake:
        yield fake
        print(f"fake OpenAI requests:\n{fake.log()}")  # shown when the test failed


@pytest.fixture
def web() -> Iterator[FakeWeb]:
    """A scripted HTTP server on 127.0.0.1 that safe_get may reach (its port only)."""
    server = FakeWeb().start()
    try:
        with allow_loopback_for_tests(server.port):
            yield server
    finally:
        server.stop()


@pytest.fixture
def listener() -> Iterator[Listener]:
    """A TCP listener on 127.0.0.1 that nothing may reach; it counts connections."""
    target = Listener()
    try:
        yield target
    finally:
        target.stop()


@pytest.fixture
def connect_attempts() -> Iterator[list[tuple[str, int]]]:
    """Every (address, port) this process tries to connect to during the test; connections
    outside loopback are refused before any packet."""
    with recording_connections() as attempts:
        yield attempts


@pytest.fixture(scope="session")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], tuple[Path, Path]]:
    """A factory of self-signed certificates for a host name: (cert.pem, key.pem)."""
    return partial(self_signed_certificate, tmp_path_factory.mktemp("tls"))
