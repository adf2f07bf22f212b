"""Failed sign-ins, counted so that guessing is slow and nobody can lock an owner out.

Three counts, each a row of ``login_throttles`` (so every process sees them):

- ``pair``: one address from one client. ``login_free_failures`` free, then an exponential
  wait (2, 4, 8 … s, at most ``login_max_wait_seconds``) in which that client is refused for
  that address (429 with ``Retry-After``), even with the right password. Success clears it.
- ``client``: one client, whatever the addresses (a sweep across accounts).
  ``login_client_free_failures`` free, then the same wait for every address. Success does not
  clear it: an attacker's own account must not buy more guesses.
- ``address``: one address from all clients together. Past ``login_address_slow_after``
  failures every attempt on the address is answered only after ``login_slow_seconds``, and a
  client gets one free failure for it instead of ``login_free_failures``; a client that has
  not failed is never refused, so the owner can always sign in. Success clears it.

A client is its address as kit/client_ip.py finds it (``X-Forwarded-For`` only from trusted
proxies; an IPv6 /64 counts as one). A row is forgotten a day after its last failure and
deleted with the next failure, so anonymous clients cannot grow the table beyond what their
own throttles let them send.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, func, select, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from signoff.config import Settings
from signoff.db import Database
from signoff.errors import TooManyRequests
from signoff.kit.clock import utc_now
from signoff.models import LoginThrottle

PAIR = "pair"
CLIENT = "client"
ADDRESS = "address"
FORGET_AFTER = timedelta(days=1)
# Longer than any address (320) plus a client key (an IPv6 /64 is at most 43).
_SUBJECT_LENGTH = 400


@dataclass(frozen=True)
class Attempt:
    """A sign-in attempt: the address tried and the client that tried it."""

    email: str
    client: str

    @property
    def subjects(self) -> dict[str, str]:
        email = self.email.lower()[:320]
        pair = f"{email} {self.client}"[:_SUBJECT_LENGTH]
        return {PAIR: pair, CLIENT: self.client[:_SUBJECT_LENGTH], ADDRESS: email}


def wait_after(settings: Settings, free: int, failures: int) -> timedelta:
    """How long a count of ``failures`` must wait when ``free`` of them cost nothing."""
    over = failures - free
    if over < 0:
        return timedelta(0)
    return timedelta(seconds=min(settings.login_max_wait_seconds, 2 ** (over + 1)))


async def _counts(session: AsyncSession, attempt: Attempt) -> dict[str, LoginThrottle]:
    """The attempt's live rows by scope (forgotten ones left out)."""
    keys = list(attempt.subjects.items())
    rows = await session.scalars(
        select(LoginThrottle).where(
            tuple_(LoginThrottle.scope, LoginThrottle.subject).in_(keys),
            LoginThrottle.last_failure_at > utc_now() - FORGET_AFTER,
        )
    )
    return {row.scope: row for row in rows}


async def take_turn(session: AsyncSession, attempt: Attempt) -> None:
    """Wait for the client's other sign-ins to finish their write (PostgreSQL: a lock held
    until the transaction ends; SQLite's writes are serial), so that a burst cannot all pass
    :func:`check` before any of its failures is counted. One lock per client covers its
    address pairs too."""
    if session.get_bind().dialect.name == "postgresql":
        key = func.hashtextextended(f"signoff-login {attempt.subjects[CLIENT]}", 0)
        await session.execute(select(func.pg_advisory_xact_lock(key)))


async def check(session: AsyncSession, settings: Settings, attempt: Attempt) -> float:
    """Refuse the attempt (429) while its client, or its client for this address, must wait;
    else the seconds to pause before answering it (the address is past its ceiling) or 0."""
    counts = await _counts(session, attempt)
    address = counts.get(ADDRESS)
    slowed = address is not None and address.failures >= settings.login_address_slow_after
    now = utc_now()
    for scope, free, message in (
        (
            CLIENT,
            settings.login_client_free_failures,
            "Too many failed sign-ins from your network; try again later.",
        ),
        (
            PAIR,
            1 if slowed else settings.login_free_failures,
            "Too many failed sign-in attempts for this address; try again later.",
        ),
    ):
        row = counts.get(scope)
        if row is None:
            continue
        retry_at = row.last_failure_at + wait_after(settings, free, row.failures)
        if now < retry_at:
            raise TooManyRequests(
                message, retry_after_seconds=int((retry_at - now).total_seconds()) + 1
            )
    return settings.login_slow_seconds if slowed else 0.0


async def pace(db: Database, settings: Settings, attempt: Attempt) -> None:
    """Before the password is checked: refuse (429) or pause as :func:`check` says. The pause
    happens outside any transaction, so a slowed address holds up nobody else; the write that
    checks the password checks again, so a burst that passed here together is still counted."""
    async with db.read() as session:
        pause = await check(session, settings, attempt)
    if pause:
        await asyncio.sleep(pause)


async def record_failure(session: AsyncSession, attempt: Attempt) -> None:
    """Count a failure in all three scopes (one upsert each, so racing processes add up) and
    delete the rows nobody has failed for in a day."""
    now = utc_now()
    forgotten = now - FORGET_AFTER
    await session.execute(delete(LoginThrottle).where(LoginThrottle.last_failure_at <= forgotten))
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    table = LoginThrottle.__table__
    for scope, subject in attempt.subjects.items():
        insert = dialect.insert(table).values(
            scope=scope, subject=subject, failures=1, last_failure_at=now
        )
        await session.execute(
            insert.on_conflict_do_update(
                index_elements=[table.c.scope, table.c.subject],
                set_={"failures": table.c.failures + 1, "last_failure_at": now},
            )
        )


async def record_success(session: AsyncSession, attempt: Attempt) -> None:
    """The right password: this client's count for the address, and the address's, start over
    (the client's own count across addresses stays)."""
    subjects = attempt.subjects
    await session.execute(
        delete(LoginThrottle).where(
            tuple_(LoginThrottle.scope, LoginThrottle.subject).in_(
                [(PAIR, subjects[PAIR]), (ADDRESS, subjects[ADDRESS])]
            )
        )
    )
