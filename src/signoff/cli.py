"""The ``signoff`` command: serve, db upgrade, and operator tasks."""

from __future__ import annotations

import logging
import sys

import typer

from signoff.config import ConfigError, Settings, load_settings

app = typer.Typer(help="Signoff: AI workflows that people sign off on.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
app.add_typer(db_app, name="db")


def _settings() -> Settings:
    try:
        return load_settings()
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


def _configure_logging() -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


@db_app.command("upgrade")
def db_upgrade(revision: str = typer.Argument("head")) -> None:
    """Apply database migrations up to REVISION (default: the latest)."""
    from signoff.migrations.runner import upgrade

    _configure_logging()
    settings = _settings()
    upgrade(settings.effective_database_url, revision)
    typer.echo("database is up to date")


@db_app.command("revision", hidden=True)
def db_revision(message: str, rev_id: str = typer.Option(..., help="e.g. 0002")) -> None:
    """For developers: autogenerate a migration from the models against a scratch database."""
    import tempfile

    from alembic import command

    from signoff.migrations.runner import alembic_config, upgrade

    with tempfile.TemporaryDirectory() as scratch:
        url = f"sqlite+aiosqlite:///{scratch}/scratch.db"
        upgrade(url)
        command.revision(alembic_config(url), message=message, autogenerate=True, rev_id=rev_id)


@app.command()
def serve(
    host: str | None = typer.Option(None, help="Interface to bind (default SIGNOFF_HOST)."),
    port: int | None = typer.Option(None, help="Port (default SIGNOFF_PORT, 8000)."),
) -> None:
    """Serve the API and dashboard (SQLite databases are migrated first)."""
    import uvicorn

    from signoff.app import create_app
    from signoff.migrations.runner import upgrade

    _configure_logging()
    overrides = {k: v for k, v in {"host": host, "port": port}.items() if v is not None}
    try:
        settings = load_settings(**overrides)
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    if settings.is_sqlite:
        upgrade(settings.effective_database_url)
    typer.echo(f"Signoff on {settings.public_base_url} (API docs at /docs)")
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_config=None)


def main() -> None:
    try:
        app()
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
