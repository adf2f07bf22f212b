"""What an operator meets first: /healthz (liveness), /readyz (readiness: database,
migrations, queue), the / redirect and ``signoff --version``."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from typer.testing import CliRunner

import signoff
from signoff.app import create_app
from signoff.cli import app as cli
from signoff.health import migration_head
from signoff.migrations.runner import upgrade
from tests.support.settings import make_settings


def _dead_port() -> int:
    # A port nothing listens on: bound, then released.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def _get(settings_path: Path, database_url: str, path: str) -> httpx.Response:
    app = create_app(make_settings(settings_path, database_url))
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.get(path)


READY = {"status": "ok", "checks": {"database": "ok", "migrations": "ok", "queue": "ok"}}


async def test_a_migrated_sqlite_service_is_ready(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/ready.db"
    await asyncio.to_thread(upgrade, url)
    ready = await _get(tmp_path, url, "/readyz")
    assert (ready.status_code, ready.json()) == (200, READY)


@pytest.mark.postgres(only=True)
async def test_a_migrated_postgresql_service_is_ready(tmp_path: Path, database_url: str) -> None:
    ready = await _get(tmp_path, database_url, "/readyz")  # the test database is migrated
    assert (ready.status_code, ready.json()) == (200, READY)
    assert (await _get(tmp_path, database_url, "/healthz")).status_code == 200


async def test_an_unreachable_database_is_not_ready_but_the_process_is_alive(
    tmp_path: Path,
) -> None:
    dead = f"postgresql://postgres@127.0.0.1:{_dead_port()}/signoff"
    ready = await _get(tmp_path, dead, "/readyz")
    assert ready.status_code == 503
    body = ready.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"].startswith("unreachable")
    assert body["checks"]["queue"] == "ok"
    assert (await _get(tmp_path, dead, "/healthz")).status_code == 200


async def test_a_schema_behind_this_version_is_not_ready(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/old.db"
    await asyncio.to_thread(upgrade, url, "0006")
    ready = await _get(tmp_path, url, "/readyz")
    assert ready.status_code == 503
    migrations = ready.json()["checks"]["migrations"]
    assert ready.json()["checks"]["database"] == "ok"
    assert "0006" in migrations
    assert str(migration_head()) in migrations
    assert "signoff db upgrade" in migrations


async def test_an_unknown_dashboard_address_is_a_page_for_a_person(
    client: httpx.AsyncClient,
) -> None:
    page = await client.get("/dashboard/approvals", headers={"Accept": "text/html"})
    assert page.status_code == 404
    assert page.headers["content-type"].startswith("text/html")
    assert "<h1>Not found</h1>" in page.text
    api = await client.get("/dashboard/approvals")  # a script gets the error model
    assert (api.status_code, api.json()["code"]) == (404, "not_found")


async def test_an_unexpected_failure_on_a_dashboard_page_is_a_page(app: FastAPI) -> None:
    @app.get("/dashboard/fails-for-this-test")
    async def fails() -> None:
        raise RuntimeError("a bug")

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        page = await http.get("/dashboard/fails-for-this-test", headers={"Accept": "text/html"})
        api = await http.get("/dashboard/fails-for-this-test")
    assert page.status_code == 500
    assert page.headers["content-type"].startswith("text/html")
    assert "nothing you did caused it" in page.text
    assert "a bug" not in page.text
    assert api.json() == {"error": "Something went wrong on our side.", "code": "internal_error"}


async def test_the_root_sends_a_visitor_to_the_dashboard(client: httpx.AsyncClient) -> None:
    answer = await client.get("/")
    assert answer.status_code == 307
    assert answer.headers["location"] == "/dashboard"


def test_the_command_prints_its_version() -> None:
    answer = CliRunner().invoke(cli, ["--version"])
    assert answer.exit_code == 0
    assert answer.output.strip() == f"signoff {signoff.__version__}"


def test_serve_stops_at_once_on_an_unreachable_or_malformed_database(tmp_path: Path) -> None:
    for url, expected in [
        (f"postgresql://postgres@127.0.0.1:{_dead_port()}/signoff", "cannot use the database"),
        ("not a url", "SIGNOFF_DATABASE_URL is not a database URL"),
    ]:
        answer = CliRunner().invoke(
            cli,
            ["serve"],
            env={"SIGNOFF_DATA_DIR": str(tmp_path), "SIGNOFF_DATABASE_URL": url},
        )
        assert answer.exit_code == 2, answer.output
        assert f"error: {expected}" in answer.output
        assert "SIGNOFF_DATABASE_URL" in answer.output
        assert "Traceback" not in answer.output


def test_serve_names_the_port_setting_when_the_port_is_taken(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        answer = CliRunner().invoke(
            cli, ["serve"], env={"SIGNOFF_DATA_DIR": str(tmp_path), "SIGNOFF_PORT": str(port)}
        )
    assert answer.exit_code == 2, answer.output
    assert f"cannot listen on 127.0.0.1:{port}" in answer.output
    assert "SIGNOFF_PORT" in answer.output


def test_worker_names_its_port_setting_when_the_port_is_taken(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        answer = CliRunner().invoke(
            cli,
            ["worker"],
            env={
                "SIGNOFF_DATA_DIR": str(tmp_path),
                "SIGNOFF_QUEUE": "procrastinate",
                "SIGNOFF_DATABASE_URL": f"postgresql://postgres@127.0.0.1:{_dead_port()}/x",
                "SIGNOFF_TOKEN_SECRET": "a-secret-shared-by-every-process-0123",
                "SIGNOFF_WORKER_PORT": str(port),
            },
        )
    assert answer.exit_code == 2, answer.output
    assert f"cannot listen on 127.0.0.1:{port}" in answer.output
    assert "SIGNOFF_WORKER_PORT" in answer.output
    assert "Traceback" not in answer.output
