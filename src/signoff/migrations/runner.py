"""Run Alembic from code: no alembic.ini is needed, the package is self-contained."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from signoff.db import normalise_url

MIGRATIONS_DIR = Path(__file__).parent


def include_name(name: str | None, type_: str, parent_names: object) -> bool:
    """Leave procrastinate's objects out of comparisons: they live beside ours on PostgreSQL,
    applied by a migration of ours, but our models do not describe them."""
    return not (name or "").startswith("procrastinate_")


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # ConfigParser interpolation: a literal % in a password must be doubled.
    config.set_main_option("sqlalchemy.url", normalise_url(database_url).replace("%", "%%"))
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    """Bring the database schema to ``revision`` (blocking; call it off the event loop)."""
    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str, revision: str) -> None:
    command.downgrade(alembic_config(database_url), revision)
