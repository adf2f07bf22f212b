"""Helpers for the mail tests: write a notice, read rows back, wait for a condition."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from html.parser import HTMLParser
from typing import Any

from sqlalchemy import select

from signoff.config import Settings
from signoff.db import Database
from signoff.mail.service import enqueue
from signoff.models import OutboxMail, Team
from tests.fakes.smtp import FakeSmtpServer

# Long (quoted-printable wraps lines at 76 characters), with characters that HTML escapes and
# a JWT-like token: what a real approval link looks like.
LINK = (
    "http://testserver/api/workflows/3f1c9a2e-8d4b-4c1e-9a7f-2b6d5e8c0a11/approve?token=eyJhbGci"
    "OiJIUzI1NiJ9.eyJ0eXBlIjoicGxhbl9hcHByb3ZhbCIsInJldmlzaW9uIjoxfQ.c2lnbmF0dXJlLV9f&mode=x"
)
RECIPIENT = "owner@example.com"


async def write_notice(
    db: Database,
    settings: Settings,
    *,
    to: str = RECIPIENT,
    subject: str = "Your plan is ready",
    team_id: str | None = None,
) -> OutboxMail:
    """Enqueue a notice with one button (LINK) in its own committed transaction."""
    async with db.write() as session:
        return await enqueue(
            session,
            settings,
            kind="notice",
            to=to,
            subject=subject,
            template="notice",
            context={
                "heading": "A plan is waiting for you",
                "paragraphs": ["Steps: research, outline, <script>alert(1)</script> post."],
                "action_url": LINK,
                "action_label": "Approve & Activate",
            },
            team_id=team_id,
        )


async def make_team(db: Database) -> str:
    async with db.write() as session:
        team = Team(name="Acme")
        session.add(team)
        await session.flush()
        team_id: str = team.id
        return team_id


async def load(db: Database, mail_id: int) -> OutboxMail:
    async with db.read() as session:
        mail = await session.get(OutboxMail, mail_id)
        assert mail is not None
        return mail


async def all_mails(db: Database) -> list[OutboxMail]:
    async with db.read() as session:
        return list((await session.scalars(select(OutboxMail).order_by(OutboxMail.id))).all())


def with_smtp(settings: Settings, server: FakeSmtpServer, **changes: object) -> Settings:
    return settings.model_copy(update={"smtp_url": server.url, **changes})


async def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll ``condition`` for work happening in another task (not for time to pass)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


async def stop(task: asyncio.Task[Any]) -> None:
    """Cancel a running sender and check it stops (a failure, not a hung suite, if not)."""
    task.cancel()
    done, _ = await asyncio.wait([task], timeout=2)
    assert done, "the sender did not stop when cancelled"
    assert task.cancelled()


def hrefs(html: str) -> list[str]:
    """The ``href`` of every link in an HTML document, entities decoded as a browser would."""

    class _Links(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.found: list[str] = []

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            self.found += [value for name, value in attrs if name == "href" and value]

    parser = _Links()
    parser.feed(html)
    return parser.found
