"""Liveness and readiness: ``/healthz`` says the process answers, ``/readyz`` that it can work.

Readiness checks what every request needs, each with a short timeout so a probe never hangs:
the database answers, its schema is at this version's migration head, and the job queue
(procrastinate, when configured) is reachable. A failure is a 503 naming the part.
"""

from __future__ import annotations

import asyncio
from functools import cache

from alembic.script import ScriptDirectory
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

from signoff.db import Database
from signoff.migrations.runner import alembic_config
from signoff.queue.procrastinate_queue import ProcrastinateQueue

router = APIRouter(include_in_schema=False)

CHECK_TIMEOUT_SECONDS = 2.0


@cache
def migration_head() -> str | None:
    """The newest migration this code ships (read from the package, once)."""
    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


async def database_status(db: Database) -> tuple[str, str]:
    """(database, migrations): whether a query answers, and whether the schema is at head."""
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_SECONDS), db.read() as session:
            await session.execute(text("SELECT 1"))
            try:
                current = await session.scalar(text("SELECT version_num FROM alembic_version"))
            except Exception:  # no alembic_version table: never migrated
                current = None
    except TimeoutError:
        return f"no answer within {CHECK_TIMEOUT_SECONDS:g} s", "unknown"
    except Exception as error:  # an unreachable server, a refused login, …
        return f"unreachable: {type(error).__name__}", "unknown"
    head = migration_head()
    if current != head:
        found = current or "no revision"
        return "ok", f"at {found}, this version needs {head}: run `signoff db upgrade`"
    return "ok", "ok"


async def _queue(queue: object) -> str:
    if not isinstance(queue, ProcrastinateQueue):
        return "ok"  # the inline queue lives in this process
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_SECONDS):
            await queue.app.check_connection_async()
    except TimeoutError:
        return f"no answer within {CHECK_TIMEOUT_SECONDS:g} s"
    except Exception as error:
        return f"unreachable: {type(error).__name__}"
    return "ok"


async def database_problem(url: str) -> str | None:
    """Why the database at ``url`` cannot be used, in one line; None when a query answers.
    For start-up, so a mistyped or unreachable ``SIGNOFF_DATABASE_URL`` stops the process
    with a sentence instead of a traceback per request."""
    try:
        db = Database.from_url(url)
    except Exception as error:  # SQLAlchemy's ArgumentError for a malformed URL, …
        return f"SIGNOFF_DATABASE_URL is not a database URL ({error})"
    timeout = CHECK_TIMEOUT_SECONDS * 2  # a start-up may meet a server that is waking up
    try:
        async with asyncio.timeout(timeout), db.read() as session:
            await session.execute(text("SELECT 1"))
    except TimeoutError:
        return f"the database at SIGNOFF_DATABASE_URL did not answer within {timeout:g} s"
    except Exception as error:
        reason = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
        return f"cannot use the database at SIGNOFF_DATABASE_URL: {reason}"
    finally:
        await db.dispose()
    return None


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """Liveness: the process answers (no dependency is checked)."""
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    """Readiness: 200 when the database, its schema and the queue are ready; else 503 with the
    part that is not."""
    database, migrations = await database_status(request.app.state.db)
    checks = {
        "database": database,
        "migrations": migrations,
        "queue": await _queue(getattr(request.app.state, "queue", None)),
    }
    ready = all(value == "ok" for value in checks.values())
    return JSONResponse(
        {"status": "ok" if ready else "unavailable", "checks": checks},
        status_code=200 if ready else 503,
        headers={"Cache-Control": "no-store"},
    )
