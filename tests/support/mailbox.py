"""Helpers for the team tests: memberships, invitations, and reading the emails they send."""

from __future__ import annotations

import asyncio
from email.message import EmailMessage
from typing import Any

import httpx
from sqlalchemy import select

from signoff.db import Database
from signoff.models import Membership, Role
from tests.fakes.smtp import FakeSmtpServer
from tests.support import BROWSER, Account, links_in

HTML = {"User-Agent": BROWSER, "Accept": "text/html,application/xhtml+xml"}


async def roles(database: Database, team_id: str) -> dict[str, Role]:
    """The team's memberships as user id → role, read straight from the database."""
    async with database.read() as session:
        rows = await session.scalars(select(Membership).where(Membership.team_id == team_id))
        return {row.user_id: row.role for row in rows}


async def invite(
    client: httpx.AsyncClient, inviter: Account, team_id: str, email: str, role: str = "member"
) -> httpx.Response:
    return await client.post(
        f"/api/teams/{team_id}/invitations",
        json={"email": email, "role": role},
        headers=inviter.headers,
    )


async def mail_to(
    server: FakeSmtpServer, address: str, subject: str, *, count: int = 1, timeout: float = 10.0
) -> EmailMessage:
    """The ``count``-th email to ``address`` whose subject contains ``subject``, once it came."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        found = [
            message
            for message in list(server.messages)
            if message["To"] == address and subject in str(message["Subject"])
        ]
        if len(found) >= count:
            return found[count - 1]
        if asyncio.get_running_loop().time() > deadline:
            subjects = [(str(m["To"]), str(m["Subject"])) for m in server.messages]
            raise AssertionError(f"no email {subject!r} #{count} to {address}; got {subjects}")
        await asyncio.sleep(0.02)


def link(message: EmailMessage, prefix: str) -> str:
    """The one link of the email that starts with ``prefix`` (a path on the test server)."""
    [path] = [url for url in links_in(message) if url.startswith(prefix)]
    return path


def text_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())


def as_browser(client: httpx.AsyncClient, account: Account | None) -> None:
    """Make the client a browser signed in as ``account`` (or signed out: None)."""
    client.cookies.clear()
    if account is not None:
        client.cookies.set("signoff_session", account.token)


def json_of(response: httpx.Response) -> Any:
    assert response.headers["content-type"].startswith("application/json"), response.text
    return response.json()
