"""Failed sign-ins (auth/throttle.py): slow guessing, no lock-out of the owner, clients as
kit/client_ip.py finds them, state shared by every process, rows that do not pile up."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import timedelta
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from sqlalchemy import func, select

from signoff.app import create_app
from signoff.config import Settings
from signoff.db import Database
from signoff.kit.clock import FrozenClock
from signoff.models import LoginThrottle
from tests.support.accounts import PASSWORD, signup

pytestmark = pytest.mark.postgres

SLOW = 0.3
WRONG = "wrong password"
Browser = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {
        "login_slow_seconds": SLOW,
        "login_client_free_failures": 12,
        "trusted_proxies": "10.0.0.0/8, 192.0.2.7",
    }


def client_at(app: FastAPI) -> Browser:
    """A client whose TCP peer address is ``ip``."""

    @asynccontextmanager
    async def open_client(ip: str) -> AsyncIterator[httpx.AsyncClient]:
        transport = httpx.ASGITransport(app=app, client=(ip, 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield http

    return open_client


@pytest.fixture
def from_ip(app: FastAPI) -> Browser:
    return client_at(app)


async def login(
    http: httpx.AsyncClient, email: str, password: str, **headers: str
) -> httpx.Response:
    body = {"email": email, "password": password}
    return await http.post("/api/auth/login", json=body, headers=headers)


async def fail_until_throttled(
    http: httpx.AsyncClient, email: str, clock: FrozenClock, failures: int, **headers: str
) -> None:
    """``failures`` counted wrong passwords from this client, waiting out each refusal."""
    counted = 0
    while counted < failures:
        response = await login(http, email, WRONG, **headers)
        if response.status_code == 429:
            clock.advance(timedelta(seconds=int(response.headers["Retry-After"])))
            continue
        assert response.status_code == 401, response.text
        counted += 1


async def test_the_owner_signs_in_from_a_fresh_client_after_20_failures_elsewhere(
    client: httpx.AsyncClient, from_ip: Browser, clock: FrozenClock
) -> None:
    owner = await signup(client)
    async with from_ip("203.0.113.9") as attacker:
        await fail_until_throttled(attacker, owner.email, clock, 20)
        # The attacker's client is refused for this address, even with the right password.
        refused = await login(attacker, owner.email, PASSWORD)
        assert refused.status_code == 429
        assert int(refused.headers["Retry-After"]) >= 1
    async with from_ip("198.51.100.4") as owners_laptop:
        started = time.monotonic()
        accepted = await login(owners_laptop, owner.email, PASSWORD)
        elapsed = time.monotonic() - started
    assert accepted.status_code == 200, accepted.text
    # The address is under attack: answers come slowly, but they come.
    assert elapsed >= SLOW


async def test_an_address_under_attack_gives_each_new_client_one_free_guess(
    client: httpx.AsyncClient, database: Database, from_ip: Browser, clock: FrozenClock
) -> None:
    owner = await signup(client)
    for n in range(4):
        async with from_ip(f"203.0.113.{n + 1}") as attacker:
            await fail_until_throttled(attacker, owner.email, clock, 5)
    # 20 failures for the address: a new client may fail once, then waits.
    async with from_ip("203.0.113.50") as another:
        assert (await login(another, owner.email, WRONG)).status_code == 401
        assert (await login(another, owner.email, WRONG)).status_code == 429
    # Success starts the address's count over: far below the ceiling, so answers are not
    # slowed (a count, not a timing: this machine may be slow for other reasons).
    async with from_ip("198.51.100.4") as owners_laptop:
        assert (await login(owners_laptop, owner.email, PASSWORD)).status_code == 200
        assert (await login(owners_laptop, owner.email, WRONG)).status_code == 401
    async with database.read() as session:
        failures = await session.scalar(
            select(LoginThrottle.failures).where(
                LoginThrottle.scope == "address", LoginThrottle.subject == owner.email
            )
        )
    assert failures == 1


async def test_one_address_from_one_client_is_refused_after_five_failures(
    client: httpx.AsyncClient, from_ip: Browser, clock: FrozenClock
) -> None:
    account = await signup(client)
    async with from_ip("203.0.113.9") as http:
        for _ in range(5):
            assert (await login(http, account.email, WRONG)).status_code == 401
        refused = await login(http, account.email, PASSWORD)
        assert refused.status_code == 429
        assert refused.json()["code"] == "too_many_requests"
        assert refused.headers["Retry-After"] == "3"  # 2 s, rounded up
        # The wait doubles with each failure after it.
        clock.advance(timedelta(seconds=3))
        assert (await login(http, account.email, WRONG)).status_code == 401
        assert (await login(http, account.email, WRONG)).headers["Retry-After"] == "5"
    # Another client is not held up, with the right password or a wrong one.
    async with from_ip("198.51.100.4") as other:
        assert (await login(other, account.email, WRONG)).status_code == 401
        assert (await login(other, account.email, PASSWORD)).status_code == 200


async def test_one_client_is_refused_after_failing_across_many_addresses(
    client: httpx.AsyncClient, from_ip: Browser
) -> None:
    victim = await signup(client)
    async with from_ip("203.0.113.9") as sweeper:
        for n in range(12):
            response = await login(sweeper, f"someone{n}@example.com", WRONG)
            assert response.status_code == 401, n
        refused = await login(sweeper, victim.email, PASSWORD)
        assert refused.status_code == 429
        assert "your network" in refused.json()["error"]
        # Signing in to an account of its own does not buy the client more guesses.
    async with from_ip("198.51.100.4") as other:
        assert (await login(other, victim.email, PASSWORD)).status_code == 200


async def test_x_forwarded_for_is_ignored_from_an_untrusted_peer(
    client: httpx.AsyncClient, from_ip: Browser
) -> None:
    account = await signup(client)
    async with from_ip("203.0.113.9") as http:
        for n in range(5):
            forged = {"X-Forwarded-For": f"198.51.100.{n}"}
            assert (await login(http, account.email, WRONG, **forged)).status_code == 401
        forged = {"X-Forwarded-For": "198.51.100.99"}
        assert (await login(http, account.email, PASSWORD, **forged)).status_code == 429


async def test_x_forwarded_for_is_honoured_from_a_trusted_proxy(
    client: httpx.AsyncClient, from_ip: Browser
) -> None:
    account = await signup(client)
    async with from_ip("10.1.2.3") as proxy:
        # Whatever the client wrote on the left, the proxy appended the address it saw.
        for n in range(5):
            hops = {"X-Forwarded-For": f"198.51.100.{n}, 203.0.113.9"}
            assert (await login(proxy, account.email, WRONG, **hops)).status_code == 401
        attacker = {"X-Forwarded-For": "203.0.113.9"}
        assert (await login(proxy, account.email, PASSWORD, **attacker)).status_code == 429
        # Another client behind the same proxy (and a second trusted hop) is not held up.
        owner = {"X-Forwarded-For": "198.51.100.4, 192.0.2.7"}
        assert (await login(proxy, account.email, PASSWORD, **owner)).status_code == 200


async def test_the_dashboard_form_is_throttled_alike(
    client: httpx.AsyncClient, from_ip: Browser, clock: FrozenClock
) -> None:
    account = await signup(client)
    form = {"email": account.email, "password": WRONG}
    async with from_ip("203.0.113.9") as http:
        for _ in range(5):
            assert (await http.post("/dashboard/login", data=form)).status_code == 401
        refused = await http.post("/dashboard/login", data={**form, "password": PASSWORD})
        assert refused.status_code == 429
        assert "Too many failed sign-in attempts" in refused.text
    async with from_ip("198.51.100.4") as other:
        signed_in = await other.post(
            "/dashboard/login", data={"email": account.email, "password": PASSWORD}
        )
        assert signed_in.status_code == 303


async def test_every_process_sees_the_counts(
    client: httpx.AsyncClient, settings: Settings, database: Database
) -> None:
    account = await signup(client)
    first, second = create_app(settings, db=database), create_app(settings, db=database)
    async with LifespanManager(first), LifespanManager(second):
        async with client_at(first)("203.0.113.9") as one:
            for _ in range(5):
                assert (await login(one, account.email, WRONG)).status_code == 401
        async with client_at(second)("203.0.113.9") as two:
            assert (await login(two, account.email, PASSWORD)).status_code == 429


async def test_counts_are_forgotten_after_a_day(
    client: httpx.AsyncClient, from_ip: Browser, database: Database, clock: FrozenClock
) -> None:
    account = await signup(client)
    for n in range(30):
        async with from_ip(f"203.0.113.{n}") as http:
            assert (await login(http, f"nobody{n}@example.com", WRONG)).status_code == 401
    async with database.read() as session:
        assert await session.scalar(select(func.count()).select_from(LoginThrottle)) == 90
    clock.advance(timedelta(days=1, seconds=1))
    async with from_ip("198.51.100.4") as http:
        assert (await login(http, account.email, WRONG)).status_code == 401
    async with database.read() as session:
        rows = (await session.execute(select(LoginThrottle.scope, LoginThrottle.failures))).all()
    assert sorted(rows) == [("address", 1), ("client", 1), ("pair", 1)]
