"""Helpers for tests: act as users through the API, the way a client would."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import httpx

PASSWORD = "correct horse battery"
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
