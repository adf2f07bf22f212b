"""Helpers for tests: act as users through the API, the way a client would."""

from __future__ import annotations

import asyncio
import itertools
import re
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

import httpx

from signoff.auth import service as auth_service
from signoff.db import Database
from signoff.models import Role

PASSWORD = "correct horse battery"
BROWSER = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0 Safari/537.36"
)
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


async def signup(client: httpx.AsyncClient, email: str | None = None, name: str = "") -> Account:
    email = email or f"user{next(_counter)}@example.com"
    body = {"email": email, "password": PASSWORD}
    if name:
        body["name"] = name
    response = await client.post("/api/auth/signup", json=body)
    assert response.status_code == 201, response.text
    data = response.json()
    client.cookies.clear()  # tests pass tokens explicitly unless they test cookies
    return Account(data["user"]["id"], data["team"]["id"], email, data["token"])


async def wait_for_run(
    client: httpx.AsyncClient,
    account: Account,
    workflow_id: str,
    run_id: int,
    status: str,
    *,
    timeout: float = 10.0,
) -> dict[str, Any]:
    """Poll the run until it reaches ``status`` (the inline engine works in the background)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        response = await client.get(
            f"/api/workflows/{workflow_id}/runs/{run_id}", headers=account.headers
        )
        assert response.status_code == 200, response.text
        run: dict[str, Any] = response.json()
        if run["status"] == status:
            return run
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"run stayed {run['status']}, expected {status}: {run}")
        await asyncio.sleep(0.02)


def links_in(message: EmailMessage) -> list[str]:
    """The links of an email's text part, as paths on the test server."""
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return [
        url.removeprefix("http://testserver")
        for url in re.findall(r"http://testserver/\S+", str(part.get_content()))
    ]


async def wait_for_mail(server: Any, count: int, *, timeout: float = 10.0) -> list[EmailMessage]:
    deadline = asyncio.get_running_loop().time() + timeout
    while len(server.messages) < count:
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"expected {count} emails, got {len(server.messages)}")
        await asyncio.sleep(0.02)
    return list(server.messages)


async def wait_for_subject(server: Any, fragment: str, *, timeout: float = 10.0) -> EmailMessage:
    """The first email received whose subject contains ``fragment``."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        for message in list(server.messages):
            if fragment in str(message["Subject"]):
                return message  # type: ignore[no-any-return]
        if asyncio.get_running_loop().time() > deadline:
            subjects = [str(message["Subject"]) for message in server.messages]
            raise AssertionError(f"no email about {fragment!r}; got {subjects}")
        await asyncio.sleep(0.02)


async def join(database: Database, team_id: str, account: Account, role: Role) -> None:
    """Make ``account`` a member of the team directly (the invitation flow is tested apart)."""
    async with database.write() as session:
        await auth_service.add_member(session, team_id=team_id, user_id=account.user_id, role=role)
