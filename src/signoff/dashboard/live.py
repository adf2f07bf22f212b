"""Live updates of run and step status: a Server-Sent Events stream of a page's *version*.

When the version changes the browser fetches the page again and swaps its live regions
(``static/app.js``); see :func:`stream`.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import StreamingResponse

from signoff.db import Database

POLL_SECONDS = 1.0
STREAM_SECONDS = 30.0
"""A stream ends by itself after this and the browser reconnects (EventSource does so on its
own): a server shutting down waits for open responses, and never waits longer."""
RECONNECT_MS = 1000

Progress = Callable[[AsyncSession], Awaitable[list[tuple[Any, ...]]]]


def version(rows: list[tuple[Any, ...]]) -> str:
    """The version a page embeds: a hash of its small progress query's rows."""
    return hashlib.sha256(repr(rows).encode()).hexdigest()[:16]


async def current_version(db: Database, progress: Progress) -> str:
    async with db.read() as session:
        return version(await progress(session))


async def _versions(request: Request, db: Database, progress: Progress) -> AsyncIterator[str]:
    """Poll the progress query and send the version whenever it changes. Each poll is its own
    short read transaction, so no transaction stays open between polls."""
    yield f"retry: {RECONNECT_MS}\n\n"
    loop = asyncio.get_running_loop()
    deadline = loop.time() + STREAM_SECONDS
    sent = None
    while loop.time() < deadline and not await request.is_disconnected():
        now = await current_version(db, progress)
        if now != sent:
            yield f"data: {now}\n\n"
            sent = now
        await asyncio.sleep(POLL_SECONDS)


def stream(request: Request, db: Database, progress: Progress) -> StreamingResponse:
    """The event stream of a page's versions; it ends after :data:`STREAM_SECONDS`."""
    return StreamingResponse(
        _versions(request, db, progress),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
