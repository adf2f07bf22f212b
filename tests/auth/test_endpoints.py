"""Accounts through HTTP: signup, login, logout, /api/me, team selection, throttling."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select

from signoff.db import Database
from signoff.kit.clock import FrozenClock
from signoff.kit.ids import hash_token
from signoff.models import AuthSession, Role, User
from tests.support.accounts import PASSWORD, join, signup

pytestmark = pytest.mark.postgres


async def test_signup_creates_user_team_and_session(
    client: httpx.AsyncClient, database: Database
) -> None:
    response = await client.post(
        "/api/auth/signup",
        json={"email": "Ada@Example.com", "password": PASSWORD, "name": "Ada"},
    )
    assert response.status_code == 201
    body = response.json()
    assert body["user"]["email"] == "ada@example.com"
    assert body["user"]["emailVerified"] is False
    assert body["team"]["name"] == "Ada's team"
    assert len(body["token"]) >= 43
    cookie = response.headers["set-cookie"].lower()
    assert "signoff_session=" in cookie
    assert "httponly" in cookie
    assert "samesite=lax" in cookie
    assert "secure" not in cookie  # the test base URL is http

    me = await client.get("/api/me", headers={"Authorization": f"Bearer {body['token']}"})
    assert me.status_code == 200
    data = me.json()
    assert len(data.pop("csrfToken")) == 64  # for cookie clients (tests/test_api_contract.py)
    assert data == {
        "user": body["user"],
        "teams": [{"id": body["team"]["id"], "name": "Ada's team", "role": "owner"}],
        "currentTeamId": body["team"]["id"],
    }
    async with database.read() as session:
        stored = await session.scalar(select(AuthSession))
        user = await session.scalar(select(User))
    assert stored is not None
    assert user is not None
    # Only hashes are stored: neither the token nor the password appear anywhere.
    assert stored.token_hash == hash_token(body["token"])
    assert body["token"] not in stored.token_hash
    assert user.password_hash.startswith("$argon2id$")


async def test_session_cookie_authenticates(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/auth/signup", json={"email": "c@example.com", "password": PASSWORD}
    )
    assert response.status_code == 201
    # httpx keeps the cookie from the signup response.
    assert (await client.get("/api/me")).status_code == 200


async def test_me_without_token_is_401_in_error_shape(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/me")
    assert response.status_code == 401
    assert response.json() == {
        "error": "Sign in first: this needs a session token.",
        "code": "unauthorized",
    }
    bad = await client.get("/api/me", headers={"Authorization": "Bearer not-a-token"})
    assert bad.status_code == 401
    assert bad.json()["code"] == "unauthorized"
    basic = await client.get("/api/me", headers={"Authorization": "Basic dXNlcjpwYXNz"})
    assert basic.status_code == 401


async def test_logout_revokes_the_session_server_side(client: httpx.AsyncClient) -> None:
    account = await signup(client)
    assert (await client.get("/api/me", headers=account.headers)).status_code == 200
    out = await client.post("/api/auth/logout", headers=account.headers)
    assert out.status_code == 204
    after = await client.get("/api/me", headers=account.headers)
    assert after.status_code == 401
    assert (await client.post("/api/auth/logout", headers=account.headers)).status_code == 401


async def test_login(client: httpx.AsyncClient) -> None:
    account = await signup(client, "login@example.com")
    response = await client.post(
        "/api/auth/login", json={"email": "LOGIN@example.com", "password": PASSWORD}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["user"]["id"] == account.user_id
    assert body["team"]["id"] == account.team_id
    assert body["token"] != account.token
    me = await client.get("/api/me", headers={"Authorization": f"Bearer {body['token']}"})
    assert me.status_code == 200


async def test_wrong_credentials_do_not_say_which_part(client: httpx.AsyncClient) -> None:
    await signup(client, "known@example.com")
    wrong_password = await client.post(
        "/api/auth/login", json={"email": "known@example.com", "password": "wrong password"}
    )
    unknown_user = await client.post(
        "/api/auth/login", json={"email": "nobody@example.com", "password": PASSWORD}
    )
    assert wrong_password.status_code == unknown_user.status_code == 401
    assert wrong_password.json() == unknown_user.json()


async def test_repeated_failed_logins_are_slowed_down(
    client: httpx.AsyncClient, clock: FrozenClock
) -> None:
    await signup(client, "target@example.com")
    bad = {"email": "target@example.com", "password": "wrong password"}
    for _ in range(5):
        assert (await client.post("/api/auth/login", json=bad)).status_code == 401
    throttled = await client.post("/api/auth/login", json=bad)
    assert throttled.status_code == 429
    assert throttled.json()["code"] == "too_many_requests"
    assert int(throttled.headers["Retry-After"]) >= 1
    # Even the right password waits, from this client: the throttle is checked first.
    good = {"email": "target@example.com", "password": PASSWORD}
    assert (await client.post("/api/auth/login", json=good)).status_code == 429
    clock.advance(timedelta(seconds=int(throttled.headers["Retry-After"])))
    assert (await client.post("/api/auth/login", json=good)).status_code == 200
    # Success resets the count.
    assert (await client.post("/api/auth/login", json=bad)).status_code == 401
    assert (await client.post("/api/auth/login", json=bad)).status_code == 401


async def test_duplicate_signup_is_409(client: httpx.AsyncClient) -> None:
    await signup(client, "dup@example.com")
    again = await client.post(
        "/api/auth/signup", json={"email": "DUP@example.com", "password": PASSWORD}
    )
    assert again.status_code == 409
    assert again.json()["code"] == "email_taken"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"email": "not-an-email", "password": PASSWORD}, "email"),
        ({"email": "short@example.com", "password": "1234567"}, "password"),
        ({"password": PASSWORD}, "email"),
        ({"email": "x@example.com", "password": PASSWORD, "role": "owner"}, "role"),
    ],
)
async def test_bad_signup_is_422_naming_the_field(
    client: httpx.AsyncClient, database: Database, body: dict[str, str], field: str
) -> None:
    response = await client.post("/api/auth/signup", json=body)
    assert response.status_code == 422
    payload = response.json()
    assert payload["code"] == "validation_error"
    assert [detail["field"] for detail in payload["details"]] == [field]
    assert field in payload["error"]
    async with database.read() as session:
        assert (await session.scalar(select(User))) is None


async def test_malformed_json_is_422(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/auth/signup", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["code"] == "validation_error"


async def test_team_selection_with_x_team_id(client: httpx.AsyncClient, database: Database) -> None:
    alice = await signup(client)
    bob = await signup(client)
    await join(database, bob.team_id, alice, Role.ADMIN)
    default = (await client.get("/api/me", headers=alice.headers)).json()
    assert default["currentTeamId"] == alice.team_id
    assert {(t["id"], t["role"]) for t in default["teams"]} == {
        (alice.team_id, "owner"),
        (bob.team_id, "admin"),
    }
    chosen = await client.get("/api/me", headers={**alice.headers, "X-Team-Id": bob.team_id})
    assert chosen.json()["currentTeamId"] == bob.team_id
    # Bob is not in Alice's team: her team is as invisible to him as a missing one.
    foreign = await client.get("/api/me", headers={**bob.headers, "X-Team-Id": alice.team_id})
    missing = await client.get("/api/me", headers={**bob.headers, "X-Team-Id": "no-such-team"})
    assert foreign.status_code == missing.status_code == 404
    assert foreign.json() == missing.json()


async def test_body_over_one_megabyte_is_413(client: httpx.AsyncClient) -> None:
    big = b'{"email": "' + b"a" * (2 * 1024 * 1024) + b'"}'
    response = await client.post(
        "/api/auth/signup", content=big, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"


async def test_streamed_body_over_the_limit_is_413(client: httpx.AsyncClient) -> None:
    async def chunks():  # type: ignore[no-untyped-def]
        for _ in range(40):
            yield b"x" * 65536

    response = await client.post(
        "/api/auth/signup", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413


async def test_unknown_route_is_404_in_error_shape(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/nothing-here")
    assert response.status_code == 404
    assert response.json() == {"error": "Not found.", "code": "not_found"}
