"""The schedule's fire log: every due time of every workflow, and what became of it."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import ForeignKey, Index, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from signoff.kit.clock import utc_now
from signoff.models.base import Base, str_enum


class FireOutcome(enum.StrEnum):
    STARTED = "started"  # a run started for this due time
    SKIPPED = "skipped"  # a run was still active; nothing queued, not an error
    MISSED = "missed"  # handled later than the grace period (the service was down)


class ScheduleFire(Base):
    __tablename__ = "schedule_fires"
    __table_args__ = (
        # One entry per due time (and one catch-up per downtime): defence in depth behind the
        # scheduler's atomic claim on the workflow's next fire time.
        UniqueConstraint("workflow_id", "due_at", "catch_up"),
        Index("ix_schedule_fires_workflow_due", "workflow_id", "due_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    workflow_id: Mapped[str] = mapped_column(ForeignKey("workflows.id", ondelete="CASCADE"))
    team_id: Mapped[str] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"), index=True)
    due_at: Mapped[datetime]
    handled_at: Mapped[datetime] = mapped_column(default=utc_now)
    outcome: Mapped[FireOutcome] = mapped_column(str_enum(FireOutcome, length=16))
    catch_up: Mapped[bool] = mapped_column(default=False)
    run_id: Mapped[int | None] = mapped_column(
        ForeignKey("runs.id", ondelete="SET NULL"), default=None
    )
