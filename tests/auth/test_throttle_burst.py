"""A burst of sign-ins from one client at once (PostgreSQL, READ COMMITTED): every attempt
passes the first look together, yet only the free failures are answered; the rest are refused
(429) without saying whether they guessed right."""

from __future__ import annotations

import asyncio

import pytest

from signoff.auth import service as auth_service
from signoff.auth.passwords import hash_password
from signoff.config import Settings
from signoff.db import Database
from signoff.errors import TooManyRequests
from signoff.kit.ids import new_id

pytestmark = pytest.mark.postgres(only=True)  # SQLite's writes are serial: nothing interleaves

CLIENT = "203.0.113.9"


async def test_a_concurrent_burst_gets_only_the_free_failures_answered(
    database: Database, settings: Settings
) -> None:
    email = f"{new_id()}@example.com"
    password_hash = await hash_password(settings, "the-right-password")
    async with database.write() as session:
        await auth_service.create_user(
            session, settings, email=email, password_hash=password_hash, name="Victim"
        )

    async def guess(number: int) -> str:
        try:
            signed_in = await auth_service.authenticate(
                database, settings, email=email, password=f"guess-{number}", client=CLIENT
            )
        except TooManyRequests:
            return "refused"
        return "answered" if signed_in is None else "signed in"

    outcomes = await asyncio.gather(*(guess(number) for number in range(30)))
    assert outcomes.count("answered") == settings.login_free_failures
    assert outcomes.count("refused") == 30 - settings.login_free_failures
