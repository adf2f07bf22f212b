"""Request and response bodies of the workflow endpoints (the seed's field names)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field, RootModel, field_validator

from signoff.kit.cron import ScheduleError, check_timezone, normalise_schedule
from signoff.kit.schemas import ApiInput, ApiModel
from signoff.kit.storable import MAX_DB_INT
from signoff.models import WorkflowStatus
from signoff.runs.schemas import RunStepOut, RunSummary
from signoff.tools.registry import ToolName

MAX_GOAL_LENGTH = 4000


def check_schedule_field(value: str | None) -> str | None:
    if value is None or not value.strip():
        return None
    try:
        return normalise_schedule(value)
    except ScheduleError as exc:
        raise ValueError(str(exc)) from None


def check_timezone_field(value: str) -> str:
    try:
        return check_timezone(value)
    except ScheduleError as exc:
        raise ValueError(str(exc)) from None


class CreateWorkflowRequest(ApiInput):
    goal: str = Field(
        min_length=1,
        max_length=MAX_GOAL_LENGTH,
        description="What the workflow should accomplish, in plain language.",
        examples=["Publish a weekly LinkedIn post about AI news every Monday morning"],
    )
    schedule: str | None = Field(
        default=None,
        description="Optional cron schedule, 5 fields: minute hour day-of-month month "
        "day-of-week (e.g. `0 9 * * 1`; names like MON are fine).",
    )
    timezone: str = Field(default="UTC", description="IANA timezone of the schedule.")

    _check_schedule = field_validator("schedule")(check_schedule_field)
    _check_timezone = field_validator("timezone")(check_timezone_field)


class StepIn(ApiInput):
    step_index: int | None = Field(
        default=None, ge=0, le=MAX_DB_INT, description="Replace this step; leave out to append."
    )
    description: str = Field(min_length=1, max_length=500)
    tool_name: ToolName
    tool_input: dict[str, Any] = Field(default_factory=dict)
    requires_approval: bool = False
    approval_prompt: str | None = Field(default=None, max_length=1000)


class ScheduleChange(ApiInput):
    """Send ``schedule: null`` (or "") to remove the schedule; leave a field out to keep it."""

    schedule: str | None = Field(default=None, description="5-field cron, or null to remove.")
    timezone: str | None = Field(default=None, description="IANA timezone of the schedule.")

    _check_schedule = field_validator("schedule")(check_schedule_field)

    @field_validator("timezone")
    @classmethod
    def _check_timezone(cls, value: str | None) -> str | None:
        return None if value is None else check_timezone_field(value)


class EditStepsRequest(ApiInput):
    steps: list[StepIn] = Field(min_length=1, max_length=20)
    mode: Literal["merge", "replace"] = Field(
        default="merge",
        description="`merge` adds or updates steps; `replace` sets the whole plan.",
    )


class StepOut(ApiModel):
    step_index: int
    description: str
    tool_name: str
    tool_input: dict[str, Any]
    requires_approval: bool
    approval_prompt: str | None


class WorkflowOut(ApiModel):
    id: str
    title: str
    goal: str
    status: WorkflowStatus
    schedule: str | None
    schedule_description: str | None
    timezone: str
    next_run_at: datetime | None
    plan_revision: int
    planned_by: str
    created_at: datetime
    updated_at: datetime
    activated_at: datetime | None


class WorkflowListItem(WorkflowOut):
    step_count: int
    latest_run: RunSummary | None = Field(
        default=None, description="The latest run's summary, or null when it never ran."
    )


class WorkflowList(RootModel[list[WorkflowListItem]]):
    """The current team's workflows, newest first."""


class WorkflowDetail(WorkflowOut):
    workflow_steps: list[StepOut]
    workflow_runs: list[RunSummary] = Field(
        description="Runs by runNumber, newest first: the latest 50, or all with ?runs=all."
    )


class CreateWorkflowResponse(ApiModel):
    workflow_id: str
    title: str
    steps: list[StepOut]
    status: Literal["draft"] = "draft"
    message: str
    planned_by: str = Field(description="Which model drafted the plan.")
    emailed_to: list[str] = Field(description="Who received the plan approval email.")


class ApprovalItem(ApiModel):
    """One decision waiting for the caller: a draft's plan, or a run's paused step."""

    kind: Literal["plan", "step"]
    workflow_id: str
    workflow_title: str
    waiting_since: datetime = Field(
        description="Since when it waits: the plan's last revision, or the step's pause."
    )
    url: str = Field(description="The dashboard page where it is decided.")
    plan_revision: int | None = Field(description="For a plan: the revision to approve.")
    plan_steps: list[StepOut] | None = Field(description="For a plan: its steps.")
    run_id: int | None = Field(description="For a step: its run.")
    run_number: int | None
    step_count: int | None = Field(description="For a step: how many steps its run has.")
    step: RunStepOut | None = Field(
        description="For a step: the step row, its `output` the preview waiting for the "
        "decision (`previousOutput`: the rejected attempt's, for a diff)."
    )
    editable: bool = Field(
        description="For a step: whether its output may be edited before approving "
        "(`editedText` of the decision)."
    )


class ApprovalList(ApiModel):
    """Every decision waiting for the caller in the current team, oldest first."""

    count: int
    items: list[ApprovalItem]
