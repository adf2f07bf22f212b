"""Workflows, their plan steps, and the record of decisions taken through email links."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates

from signoff.kit.clock import utc_now
from signoff.kit.cron import describe
from signoff.models.base import Base, IdMixin, TimestampMixin, str_enum


class WorkflowStatus(enum.StrEnum):
    DRAFT = "draft"
    ACTIVE = "active"
    ARCHIVED = "archived"


class Workflow(IdMixin, TimestampMixin, Base):
    __tablename__ = "workflows"
    __table_args__ = (
        Index("ix_workflows_team_created", "team_id", "created_at"),
        Index("ix_workflows_due", "status", "next_run_at"),  # the scheduler's query
    )

    team_id: Mapped[str] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"))
    created_by: Mapped[str | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    title: Mapped[str] = mapped_column(String(120))
    goal: Mapped[str] = mapped_column(Text)
    status: Mapped[WorkflowStatus] = mapped_column(
        str_enum(WorkflowStatus), default=WorkflowStatus.DRAFT
    )
    schedule: Mapped[str | None] = mapped_column(String(120), default=None)
    # The schedule in words, set with the schedule (describing it is too slow for every read).
    schedule_description: Mapped[str | None] = mapped_column(Text, default=None)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    next_run_at: Mapped[datetime | None] = mapped_column(default=None)
    # +1 on every plan edit: approval links carry it, so an edit voids earlier links.
    plan_revision: Mapped[int] = mapped_column(default=1)
    planned_by: Mapped[str] = mapped_column(String(120), default="")
    # Incremented under the workflow's row lock to number runs 1, 2, 3, … without gaps.
    run_count: Mapped[int] = mapped_column(default=0)
    activated_at: Mapped[datetime | None] = mapped_column(default=None)
    archived_at: Mapped[datetime | None] = mapped_column(default=None)

    @validates("schedule")
    def _describe_schedule(self, _key: str, schedule: str | None) -> str | None:
        self.schedule_description = describe(schedule) if schedule else None
        return schedule

    steps: Mapped[list[WorkflowStep]] = relationship(
        back_populates="workflow",
        order_by="WorkflowStep.step_index",
        cascade="all, delete-orphan",
        lazy="raise",
    )


class WorkflowStep(Base):
    __tablename__ = "workflow_steps"

    workflow_id: Mapped[str] = mapped_column(
        ForeignKey("workflows.id", ondelete="CASCADE"), primary_key=True
    )
    step_index: Mapped[int] = mapped_column(primary_key=True)
    description: Mapped[str] = mapped_column(Text)
    tool_name: Mapped[str] = mapped_column(String(40))
    tool_input: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    requires_approval: Mapped[bool] = mapped_column(default=False)
    approval_prompt: Mapped[str | None] = mapped_column(Text, default=None)

    workflow: Mapped[Workflow] = relationship(back_populates="steps")


class LinkDecision(IdMixin, Base):
    """One row per decision taken through a link (email or dashboard).

    The unique ``subject`` makes a decision atomic: of two concurrent clicks on the same plan
    revision (or step attempt), exactly one insert succeeds; the other is "already decided".
    """

    __tablename__ = "link_decisions"
    __table_args__ = (UniqueConstraint("subject"),)

    team_id: Mapped[str] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"), index=True)
    workflow_id: Mapped[str] = mapped_column(ForeignKey("workflows.id", ondelete="CASCADE"))
    # e.g. "plan:<workflow id>:<revision>" or "step:<run id>:<step index>:<attempt>"
    subject: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(32))  # plan_approval | step_approval
    action: Mapped[str] = mapped_column(String(16))  # approve | reject
    note: Mapped[str | None] = mapped_column(Text, default=None)
    token_id: Mapped[str | None] = mapped_column(String(64), default=None)
    decided_by: Mapped[str | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    via: Mapped[str] = mapped_column(String(16))  # email_link | dashboard
    decided_at: Mapped[datetime] = mapped_column(default=utc_now)
