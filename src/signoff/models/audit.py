"""The audit trail: one row per decision or change a person (or a run) made, written in the same
transaction as the change (``signoff.audit.service.record``)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from signoff.kit.clock import utc_now
from signoff.models.base import Base


class AuditEvent(Base):
    __tablename__ = "audit_events"
    __table_args__ = (
        # GET /api/audit pages a team's events newest first by id; the filters narrow that.
        Index("ix_audit_events_team_page", "team_id", "id"),
        Index("ix_audit_events_object", "team_id", "object_type", "object_id"),
        Index("ix_audit_events_workflow", "team_id", "workflow_id"),
    )

    # Ascending with every insert: the stable order the cursor pages by.
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    team_id: Mapped[str] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(default=utc_now)
    # The person, when one is known; kept as a label too, so a deleted account's events still
    # say who it was.
    actor_user_id: Mapped[str | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    actor: Mapped[str] = mapped_column(String(320))
    channel: Mapped[str] = mapped_column(String(16))  # api | dashboard | email_link | run
    user_agent: Mapped[str | None] = mapped_column(String(300), default=None)
    action: Mapped[str] = mapped_column(String(40))  # e.g. step.approve, member.remove
    object_type: Mapped[str] = mapped_column(String(24))  # workflow | run | step | member | …
    object_id: Mapped[str] = mapped_column(String(120))
    workflow_id: Mapped[str | None] = mapped_column(default=None)
    detail: Mapped[str] = mapped_column(Text, default="")
