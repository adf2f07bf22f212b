"""The mail outbox: every email is a row first, written in the transaction that causes it."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from signoff.kit.clock import utc_now
from signoff.models.base import Base, str_enum


class MailStatus(enum.StrEnum):
    PENDING = "pending"  # waiting for the sender (or for its next retry)
    SENT = "sent"  # accepted by the SMTP server
    KEPT = "kept"  # development without SMTP: kept for the dev mailbox, logged with its links
    FAILED = "failed"  # gave up after the last retry


class OutboxMail(Base):
    __tablename__ = "mail_outbox"
    __table_args__ = (Index("ix_mail_outbox_due", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    team_id: Mapped[str | None] = mapped_column(
        ForeignKey("teams.id", ondelete="CASCADE"), index=True, default=None
    )
    kind: Mapped[str] = mapped_column(String(40))  # plan_approval, step_approval, ...
    to_address: Mapped[str] = mapped_column(String(320))
    subject: Mapped[str] = mapped_column(String(300))
    text_body: Mapped[str] = mapped_column(Text)
    html_body: Mapped[str] = mapped_column(Text)
    # Assets (images) shown inline in the HTML part, attached by Content-ID when sent.
    inline_assets: Mapped[list[str]] = mapped_column(JSON, default=list)
    # Fixed when the row is written, so a resend after a crash carries the same Message-ID.
    message_id: Mapped[str] = mapped_column(String(200), unique=True)
    status: Mapped[MailStatus] = mapped_column(str_enum(MailStatus), default=MailStatus.PENDING)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utc_now)
    # A sender claims a row until this time; a crashed sender's claim simply runs out.
    claimed_until: Mapped[datetime | None] = mapped_column(default=None)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    sent_at: Mapped[datetime | None] = mapped_column(default=None)
