"""Sends a person did not ask for are capped: at most five verification emails per user and five
invitations per team and address in an hour. The sixth is a 429 with Retry-After that writes
nothing; an hour later sending works again."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx
import pytest

from signoff.auth.verification import SEND_LIMIT
from signoff.db import Database
from signoff.kit.clock import FrozenClock
from signoff.models import EmailVerification, Invitation, OutboxMail
from tests.support.accounts import invite, signup
from tests.support.db import count

pytestmark = pytest.mark.postgres


async def test_verification_resends_are_capped_per_hour(
    client: httpx.AsyncClient, database: Database, clock: FrozenClock
) -> None:
    account = await signup(client, "resend@example.com")  # the signup sent the first link
    for _ in range(SEND_LIMIT - 1):
        clock.advance(timedelta(minutes=1))
        sent = await client.post("/api/me/verification-email", headers=account.headers)
        assert sent.status_code == 200, sent.text
    links, mails = await count(database, EmailVerification), await count(database, OutboxMail)

    refused = await client.post("/api/me/verification-email", headers=account.headers)
    assert refused.status_code == 429
    assert refused.json()["code"] == "too_many_requests"
    # The oldest of the five leaves the window 56 minutes from now.
    assert 55 * 60 < int(refused.headers["Retry-After"]) <= 57 * 60
    assert (await count(database, EmailVerification), await count(database, OutboxMail)) == (
        links,
        mails,
    )

    clock.advance(timedelta(hours=1))
    again = await client.post("/api/me/verification-email", headers=account.headers)
    assert again.status_code == 200, again.text


async def test_invitations_to_one_address_are_capped_per_hour(
    client: httpx.AsyncClient, database: Database, clock: FrozenClock
) -> None:
    owner = await signup(client, "inviter@example.com")
    for _ in range(SEND_LIMIT):
        sent = await invite(client, owner, owner.team_id, "pat@example.com")
        assert sent.status_code == 201, sent.text
    invitations, mails = await count(database, Invitation), await count(database, OutboxMail)

    refused = await invite(client, owner, owner.team_id, "PAT@example.com")
    assert refused.status_code == 429
    assert "Retry-After" in refused.headers
    assert (await count(database, Invitation), await count(database, OutboxMail)) == (
        invitations,
        mails,
    )
    # Another address is not held back by this one.
    assert (await invite(client, owner, owner.team_id, "sam@example.com")).status_code == 201

    clock.advance(timedelta(hours=1, seconds=1))
    assert (await invite(client, owner, owner.team_id, "pat@example.com")).status_code == 201


@pytest.mark.postgres(only=True)  # SQLite's writes are serial: nothing interleaves
async def test_a_burst_of_resends_sends_no_more_than_the_cap(
    client: httpx.AsyncClient, database: Database
) -> None:
    account = await signup(client, "burst@example.com")  # the signup sent the first link
    answers = await asyncio.gather(
        *(client.post("/api/me/verification-email", headers=account.headers) for _ in range(12))
    )
    statuses = [answer.status_code for answer in answers]
    assert (statuses.count(200), statuses.count(429)) == (SEND_LIMIT - 1, 12 - SEND_LIMIT + 1)
    assert await count(database, EmailVerification) == SEND_LIMIT
