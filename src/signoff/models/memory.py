"""Team memory: named notes every plan and step can see. The key ``core`` holds the brand voice."""

from __future__ import annotations

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from signoff.models.base import Base, TimestampMixin

CORE_KEY = "core"


class MemoryEntry(TimestampMixin, Base):
    __tablename__ = "memory_entries"

    team_id: Mapped[str] = mapped_column(
        ForeignKey("teams.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    updated_by: Mapped[str | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
