"""What the per-team budgets count that no other table holds: every plan draft asked of the
model (a failed one costs tokens too), with the tokens it used."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index
from sqlalchemy.orm import Mapped, mapped_column

from signoff.kit.clock import utc_now
from signoff.models.base import Base


class PlanDraft(Base):
    __tablename__ = "plan_drafts"
    __table_args__ = (Index("ix_plan_drafts_team_requested", "team_id", "requested_at"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    team_id: Mapped[str] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"))
    requested_by: Mapped[str | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    # Written before the model is asked, so drafts in flight count against the budget too.
    requested_at: Mapped[datetime] = mapped_column(default=utc_now)
    input_tokens: Mapped[int] = mapped_column(default=0)
    output_tokens: Mapped[int] = mapped_column(default=0)
