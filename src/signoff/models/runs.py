"""Runs of a workflow, their step rows, conversations with their messages, and assets."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    ForeignKey,
    Index,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from signoff.kit.clock import utc_now
from signoff.models.base import Base, IdMixin, str_enum


class RunStatus(enum.StrEnum):
    RUNNING = "running"
    AWAITING_APPROVAL = "awaiting_approval"
    APPROVED = "approved"  # a decision was recorded; the run is queued to go on
    COMPLETED = "completed"
    FAILED = "failed"


ACTIVE_RUN_STATUSES = (RunStatus.RUNNING, RunStatus.AWAITING_APPROVAL, RunStatus.APPROVED)
_ACTIVE_SQL = "status IN ('running', 'awaiting_approval', 'approved')"


class RunTrigger(enum.StrEnum):
    MANUAL = "manual"
    SCHEDULE = "schedule"
    APPROVAL = "approval"


class StepStatus(enum.StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    AWAITING_APPROVAL = "awaiting_approval"
    COMPLETED = "completed"
    FAILED = "failed"
    SKIPPED = "skipped"  # the run ended before this step


class Conversation(IdMixin, Base):
    """A run's conversation with the step agent: the run's whole state between steps."""

    __tablename__ = "conversations"

    team_id: Mapped[str] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"), index=True)
    workflow_id: Mapped[str | None] = mapped_column(
        ForeignKey("workflows.id", ondelete="CASCADE"), default=None
    )
    niche: Mapped[str] = mapped_column(String(32), default="workflow")
    created_at: Mapped[datetime] = mapped_column(default=utc_now)


class ConversationMessage(Base):
    """One pydantic-ai ``ModelMessage``, stored as the library's own JSON so it reloads exactly."""

    __tablename__ = "conversation_messages"
    __table_args__ = (UniqueConstraint("conversation_id", "position"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    position: Mapped[int]
    data: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utc_now)


class Run(Base):
    __tablename__ = "runs"
    __table_args__ = (
        UniqueConstraint("workflow_id", "run_number"),
        # The database, not Python, guarantees at most one active run per workflow.
        Index(
            "uq_runs_one_active_per_workflow",
            "workflow_id",
            unique=True,
            sqlite_where=text(_ACTIVE_SQL),
            postgresql_where=text(_ACTIVE_SQL),
        ),
        Index("ix_runs_workflow_number", "workflow_id", "run_number"),
        Index("ix_runs_status", "status"),
        # The team's runs across workflows, newest first (GET /api/runs, /dashboard/runs).
        Index("ix_runs_team_started", "team_id", "started_at", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    workflow_id: Mapped[str] = mapped_column(ForeignKey("workflows.id", ondelete="CASCADE"))
    team_id: Mapped[str] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"), index=True)
    run_number: Mapped[int]
    status: Mapped[RunStatus] = mapped_column(str_enum(RunStatus), default=RunStatus.RUNNING)
    trigger: Mapped[RunTrigger] = mapped_column(str_enum(RunTrigger))
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id"))
    plan_revision: Mapped[int]
    step_count: Mapped[int]
    current_step_index: Mapped[int] = mapped_column(default=0)
    failure_reason: Mapped[str | None] = mapped_column(Text, default=None)
    failed_step_index: Mapped[int | None] = mapped_column(default=None)
    started_by: Mapped[str | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    # A rerun or retry: the ended run it copied, and the first step it ran again (the steps
    # before it, and their conversation, are copies of that run's).
    rerun_of_run_id: Mapped[int | None] = mapped_column(
        ForeignKey("runs.id", ondelete="SET NULL"), default=None
    )
    rerun_from_step_index: Mapped[int | None] = mapped_column(default=None)
    started_at: Mapped[datetime] = mapped_column(default=utc_now)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)
    updated_at: Mapped[datetime] = mapped_column(default=utc_now, onupdate=utc_now)
    input_tokens: Mapped[int] = mapped_column(default=0)
    output_tokens: Mapped[int] = mapped_column(default=0)
    model_requests: Mapped[int] = mapped_column(default=0)
    # The model the run was started with (SIGNOFF_LLM_MODEL then): what its tokens cost.
    model_name: Mapped[str] = mapped_column(String(120), default="", server_default="")


class RunStep(Base):
    """One step of one run: the execution log the dashboard shows.

    ``claim_token``/``claimed_until`` are the lease of the worker executing the step: only the
    holder of the current token may write the step's result, and a crashed worker's lease runs
    out so another can take the step over (``takeovers`` counts how often).
    """

    __tablename__ = "run_steps"
    __table_args__ = (
        UniqueConstraint("run_id", "step_index"),
        Index("ix_run_steps_ready", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    step_index: Mapped[int]
    description: Mapped[str] = mapped_column(Text)
    tool_name: Mapped[str] = mapped_column(String(40))
    tool_input: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    requires_approval: Mapped[bool] = mapped_column(default=False)
    approval_prompt: Mapped[str | None] = mapped_column(Text, default=None)
    status: Mapped[StepStatus] = mapped_column(str_enum(StepStatus), default=StepStatus.PENDING)
    attempt: Mapped[int] = mapped_column(default=1)
    output: Mapped[str | None] = mapped_column(Text, default=None)
    output_data: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    # What the step's tool could not do although the step completed (search not configured,
    # a fetch refused, …): a list of {code, message, setting?}; None when nothing went wrong.
    warnings: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON, default=None)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    feedback: Mapped[str | None] = mapped_column(Text, default=None)
    # The model's output when the approver edited it before approving (``output`` holds the
    # approved edit); None when approved as produced.
    model_output: Mapped[str | None] = mapped_column(Text, default=None)
    # The output of the attempt a person rejected, so the next one can be shown as a diff.
    previous_output: Mapped[str | None] = mapped_column(Text, default=None)
    retries: Mapped[int] = mapped_column(default=0)  # transient failures in this attempt
    takeovers: Mapped[int] = mapped_column(default=0)  # leases that ran out (crashed workers)
    next_attempt_at: Mapped[datetime | None] = mapped_column(default=None)
    claim_token: Mapped[str | None] = mapped_column(String(64), default=None)
    claimed_until: Mapped[datetime | None] = mapped_column(default=None)
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)
    input_tokens: Mapped[int] = mapped_column(default=0)
    output_tokens: Mapped[int] = mapped_column(default=0)


class AssetStatus(enum.StrEnum):
    PENDING = "pending"  # produced by an approval-gated step, waiting for a decision
    FINAL = "final"
    DISCARDED = "discarded"  # rejected, or its run was stopped


class Asset(IdMixin, Base):
    """What a run produced: an outline, a report, a post, an image (bytes kept here, so every
    worker machine sees them)."""

    __tablename__ = "assets"
    __table_args__ = (Index("ix_assets_team_created", "team_id", "created_at"),)

    team_id: Mapped[str] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"))
    workflow_id: Mapped[str] = mapped_column(ForeignKey("workflows.id", ondelete="CASCADE"))
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    step_index: Mapped[int]
    attempt: Mapped[int]
    type: Mapped[str] = mapped_column(String(32))
    status: Mapped[AssetStatus] = mapped_column(str_enum(AssetStatus))
    content: Mapped[str] = mapped_column(Text, default="")
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    mime_type: Mapped[str] = mapped_column(String(100), default="text/markdown")
    blob: Mapped[bytes | None] = mapped_column(LargeBinary, default=None, deferred=True)
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
