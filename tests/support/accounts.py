"""People and teams: sign up through the API as a client would, join teams, invite, and act as a
browser with a session cookie."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import select

from signoff.auth import service as auth_service
from signoff.auth.dependencies import SESSION_COOKIE
from signoff.db import Database
from signoff.models import Membership, Role

PASSWORD = "correct horse battery"
# A browser's user agent: email links decide for browsers, never for scanners (approvals.guard).
BROWSER = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0 Safari/537.36"
)
# The headers of a browser asking for a page.
HTML = {"User-Agent": BROWSER, "Accept": "text/html,application/xhtml+xml"}
_counter = itertools.count()


@dataclass
class Account:
    user_id: str
    team_id: str
    email: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def headers_in(self, team_id: str) -> dict[str, str]:
        """The headers of a request acting in ``team_id`` (another team than their own)."""
        return {**self.headers, "X-Team-Id": team_id}


def new_email(label: str = "user") -> str:
    """An address no other account of this test process has."""
    return f"{label}{next(_counter)}@example.com"


def _signup_body(email: str, name: str) -> dict[str, str]:
    return {"email": email, "password": PASSWORD} | ({"name": name} if name else {})


def _account(response: httpx.Response, email: str) -> Account:
    assert response.status_code == 201, response.text
    data = response.json()
    return Account(data["user"]["id"], data["team"]["id"], email, data["token"])


async def signup(client: httpx.AsyncClient, email: str | None = None, name: str = "") -> Account:
    """A new person with a team of their own, signed up through the API."""
    email = email or new_email()
    response = await client.post("/api/auth/signup", json=_signup_body(email, name))
    client.cookies.clear()  # tests pass tokens explicitly unless they test cookies
    return _account(response, email)


def signup_sync(client: httpx.Client, email: str | None = None, name: str = "") -> Account:
    """:func:`signup` with a synchronous client (a real server, from a Playwright test)."""
    email = email or new_email()
    response = client.post("/api/auth/signup", json=_signup_body(email, name))
    client.cookies.clear()
    return _account(response, email)


async def join(database: Database, team_id: str, account: Account, role: Role) -> None:
    """Make ``account`` a member of the team directly (the invitation flow is tested apart)."""
    async with database.write() as session:
        await auth_service.add_member(session, team_id=team_id, user_id=account.user_id, role=role)


async def signup_into(
    client: httpx.AsyncClient, database: Database, team_id: str, role: Role, **signup_args: Any
) -> Account:
    """A new person (with a team of their own too) who is also in ``team_id`` as ``role``."""
    account = await signup(client, **signup_args)
    await join(database, team_id, account, role)
    return account


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


def as_browser(client: httpx.AsyncClient, account: Account | None) -> None:
    """Make the client a browser signed in as ``account`` (or signed out: None)."""
    client.cookies.clear()
    if account is not None:
        client.cookies.set(SESSION_COOKIE, account.token)
