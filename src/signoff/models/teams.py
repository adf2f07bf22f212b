"""Team invitations and email verifications: single-use links whose tokens are stored hashed.

Both are bearer links sent by email. Like session tokens, only the SHA-256 of a token is kept,
so a database leak reveals no usable link; the link itself is shown once, in the email.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from signoff.kit.clock import utc_now
from signoff.models.auth import Role
from signoff.models.base import Base, IdMixin, str_enum


class Invitation(IdMixin, Base):
    """An invitation to join a team with a role, valid until ``expires_at`` and used once.

    An invitation is *open* while it is neither accepted nor revoked; past ``expires_at`` an
    open invitation is expired. Inviting the same address again revokes the earlier open one,
    so only the newest link works.
    """

    __tablename__ = "invitations"
    __table_args__ = (Index("ix_invitations_team_email", "team_id", "email"),)

    team_id: Mapped[str] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"))
    # Stored lower-cased, like users.email, so the invited address matches the account.
    email: Mapped[str] = mapped_column(String(320))
    role: Mapped[Role] = mapped_column(str_enum(Role, length=16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    invited_by: Mapped[str | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    expires_at: Mapped[datetime]
    accepted_at: Mapped[datetime | None] = mapped_column(default=None)
    accepted_by: Mapped[str | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)


class EmailVerification(IdMixin, Base):
    """A link that proves the user receives mail at ``email`` (the address it was sent to)."""

    __tablename__ = "email_verifications"

    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    # The address the link went to: if the user's address changes, the link proves nothing.
    email: Mapped[str] = mapped_column(String(320))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None] = mapped_column(default=None)
