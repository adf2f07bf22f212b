"""Live updates: the events stream needs a session, and sends a new version when a run moves."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, MutableMapping
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from signoff.auth.dependencies import SESSION_COOKIE
from tests.support.pages import Browser, draft_on_page, new_account, paused_run_on_pages
from tests.support.workflows import wait_for_run

pytestmark = pytest.mark.postgres


@asynccontextmanager
async def event_stream(app: FastAPI, path: str, cookie: str) -> AsyncIterator[asyncio.Queue[str]]:
    """Open ``path`` as EventSource would, straight over ASGI (httpx's transport waits for the
    whole body), yielding its events as they come; leaving disconnects the client."""
    events: asyncio.Queue[str] = asyncio.Queue()
    disconnected = asyncio.Event()
    started: list[int] = []
    buffer = ""

    async def receive() -> dict[str, Any]:
        if not started:
            started.append(1)
            return {"type": "http.request", "body": b"", "more_body": False}
        await disconnected.wait()
        return {"type": "http.disconnect"}

    async def send(message: MutableMapping[str, Any]) -> None:
        nonlocal buffer
        if message["type"] == "http.response.start":
            await events.put(f"status {message['status']}")
        elif message["type"] == "http.response.body":
            buffer += message.get("body", b"").decode()
            while "\n\n" in buffer:
                event, buffer = buffer.split("\n\n", 1)
                await events.put(event)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "server": ("testserver", 80),
        "client": ("127.0.0.1", 5000),
        "root_path": "",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": [
            (b"host", b"testserver"),
            (b"accept", b"text/event-stream"),
            (b"cookie", f"{SESSION_COOKIE}={cookie}".encode()),
        ],
    }
    task = asyncio.create_task(app(scope, receive, send))
    try:
        yield events
    finally:
        disconnected.set()
        await asyncio.wait_for(task, timeout=5)  # the stream ends when the client goes


async def next_version(events: asyncio.Queue[str]) -> str:
    while True:
        event = await asyncio.wait_for(events.get(), timeout=10)
        if event.startswith("data: "):
            return event.removeprefix("data: ")


async def test_the_stream_sends_a_new_version_when_a_run_changes(
    app: FastAPI, client: httpx.AsyncClient, browser: Browser
) -> None:
    async with browser() as page:
        account, csrf = await new_account(client, page)
        workflow_id, run_id = await paused_run_on_pages(client, page, account, csrf)
        shown = await page.get(f"/dashboard/workflows/{workflow_id}/runs/{run_id}")
        version = re.search(r'data-live-version="(\w+)"', shown.text).group(1)  # type: ignore[union-attr]
        cookie = page.cookies[SESSION_COOKIE]

        for path in (f"/dashboard/workflows/{workflow_id}/events", "/dashboard/events"):
            async with event_stream(app, path, cookie) as events:
                assert await events.get() == "status 200"
                first = await next_version(events)
                if path != "/dashboard/events":
                    assert first == version  # the page and the stream agree while nothing moves
                stop = await page.post(
                    f"/dashboard/workflows/{workflow_id}/runs/{run_id}/stop",
                    data={"csrf_token": csrf, "confirmed": "1"},
                )
                assert stop.status_code == 303
                assert await next_version(events) != first
            run_id = int(
                (
                    await page.post(
                        f"/dashboard/workflows/{workflow_id}/run", data={"csrf_token": csrf}
                    )
                )
                .headers["location"]
                .rsplit("/", 1)[1]
            )
            await wait_for_run(client, account, workflow_id, run_id, "awaiting_approval")


async def test_the_stream_needs_a_session_of_the_team(
    app: FastAPI, client: httpx.AsyncClient, browser: Browser
) -> None:
    async with browser() as page, browser() as outsider:
        _account, csrf = await new_account(client, page)
        workflow_id = await draft_on_page(page, csrf)
        await new_account(client, outsider)
        anonymous = await client.get(f"/dashboard/workflows/{workflow_id}/events")
        assert anonymous.status_code == 303
        assert anonymous.headers["location"].startswith("/dashboard/login")
        other_team = await outsider.get(f"/dashboard/workflows/{workflow_id}/events")
        assert other_team.status_code == 404
