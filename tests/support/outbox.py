"""The outbox: write a notice as the application does, read its rows back, stop a sender."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from sqlalchemy import select

from signoff.config import Settings
from signoff.db import Database
from signoff.mail.service import enqueue
from signoff.models import OutboxMail, Team
from tests.support.smtp import FakeSmtpServer

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


async def stop(task: asyncio.Task[Any]) -> None:
    """Cancel a running sender and check it stops (a failure, not a hung suite, if not)."""
    task.cancel()
    done, _ = await asyncio.wait([task], timeout=2)
    assert done, "the sender did not stop when cancelled"
    assert task.cancelled()


async def claimed_at(db: Database, mail_id: int) -> datetime | None:
    """Until when a sender holds its claim on the mail (None: unclaimed)."""
    return (await load(db, mail_id)).claimed_until
