"""Bodies of the run endpoints: runs, their step rows, messages, assets, decisions."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field, RootModel, StringConstraints, field_validator

from signoff.audit.schemas import ActedBy
from signoff.kit.schemas import ApiInput, ApiModel
from signoff.kit.storable import MAX_DB_INT
from signoff.models import AssetStatus, RunStatus, RunTrigger, StepStatus


class RunSummary(ApiModel):
    id: int
    run_number: int
    status: RunStatus
    trigger: RunTrigger
    conversation_id: str
    current_step_index: int
    step_count: int
    failure_reason: str | None
    failed_step_index: int | None
    started_at: datetime
    finished_at: datetime | None
    input_tokens: int
    output_tokens: int
    model_requests: int
    estimated_cost_usd: float | None = Field(
        default=None,
        description="What the tokens cost in USD at the model's list price (README, Budgets); "
        "null when the price of the model is not known.",
    )
    rerun_of_run_id: int | None = Field(
        default=None,
        description="A rerun or retry: the id of the ended run whose steps before "
        "`rerunFromStepIndex` (and their conversation) it copied.",
    )
    rerun_from_step_index: int | None = Field(
        default=None,
        description="A rerun or retry: the first step it ran again.",
    )


class StepWarning(ApiModel):
    """Something a step's tool could not do although the step completed."""

    code: Literal[
        "search_not_configured",
        "search_failed",
        "fetch_refused",
        "fetch_failed",
        "image_placeholder",
    ]
    message: str
    setting: str | None = Field(
        default=None, description="The setting (environment variable) that would fix it."
    )


class RunStepOut(ApiModel):
    step_index: int
    description: str
    tool_name: str
    tool_input: dict[str, Any]
    requires_approval: bool
    approval_prompt: str | None
    status: StepStatus
    attempt: int
    output: str | None
    output_data: dict[str, Any] | None
    warnings: list[StepWarning] = Field(
        default_factory=list,
        description="What the tool could not do (search not configured, a fetch refused, …): "
        "a completed step with warnings is not a plain success.",
    )

    @field_validator("warnings", mode="before")
    @classmethod
    def _none_is_empty(cls, value: Any) -> Any:
        return [] if value is None else value

    error: str | None
    feedback: str | None
    model_output: str | None = Field(
        description="The model's output when the approver edited it before approving "
        "(`output` is the approved edit); null when approved as produced."
    )
    previous_output: str | None = Field(
        description="The output of the attempt a person rejected (with `feedback`)."
    )
    started_at: datetime | None
    finished_at: datetime | None
    input_tokens: int
    output_tokens: int
    estimated_cost_usd: float | None = Field(
        default=None, description="As the run's, for this step's tokens."
    )
    decided_by: ActedBy | None = Field(
        default=None,
        description="Who last approved or requested changes on this step (the audit trail); "
        "null if nobody decided it.",
    )


class MessageOut(ApiModel):
    """One entry of a conversation, in a shape that does not depend on how it is stored."""

    role: Literal["system", "user", "assistant", "tool"]
    kind: Literal["text", "tool_call", "tool_result"]
    text: str | None = None
    tool_name: str | None = None
    args: dict[str, Any] | None = None
    result: Any = None
    created_at: datetime


class RunDetail(RunSummary):
    workflow_id: str
    stopped_by: ActedBy | None = Field(
        default=None,
        description="Who stopped the run (its status is then `failed`, its failureReason "
        '"Stopped by user"); null if nobody did.',
    )
    steps: list[RunStepOut]
    messages: list[MessageOut]


class RunStarted(ApiModel):
    run_id: int
    conversation_id: str
    message: str = "Workflow run started"


class RunPage(ApiModel):
    runs: list[RunSummary]
    next_cursor: str | None = Field(
        description="Pass as ?cursor= for the next page; null at the end."
    )


# The longest edited output an approver may send (a post's platform may allow less).
MAX_EDITED_TEXT = 20_000
# Kept exactly as sent: an edit is approved byte for byte, whitespace included.
ExactText = Annotated[str, StringConstraints(strip_whitespace=False)]


class RunListItem(RunSummary):
    """A run in the team's list across workflows: the summary and its workflow."""

    workflow_id: str
    workflow_title: str


class TeamRunPage(ApiModel):
    """A page of the team's runs, newest first."""

    runs: list[RunListItem]
    next_cursor: str | None = Field(
        description="Pass as ?cursor= (with the same filters) for the next page; null at the end."
    )


class RerunRequest(ApiInput):
    from_step_index: int = Field(
        ge=0,
        le=19,
        description="The first step to run again (0-based `stepIndex`); the steps before it and "
        "their conversation are copied from the run.",
    )


class DecisionRequest(ApiInput):
    action: Literal["approve", "reject"]
    note: str | None = Field(default=None, max_length=4000)
    edited_text: ExactText | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_EDITED_TEXT,
        description="Approve with this text instead of the model's (edit then approve): a "
        "post's text, or an image's caption. Kept byte for byte as the step's output; the "
        "conversation records the edit. Only with `approve`, for `format_post` and "
        "`generate_image` steps.",
    )
    attempt: int | None = Field(
        default=None,
        ge=1,
        le=MAX_DB_INT,
        description="The attempt you reviewed: if the step has moved on to another, the "
        "decision is refused (409 `stale_attempt`) instead of applying to an output you did "
        "not see.",
    )


class AssetOut(ApiModel):
    id: str
    workflow_id: str
    run_id: int
    step_index: int
    attempt: int
    type: str
    status: AssetStatus
    content: str
    data: dict[str, Any]
    mime_type: str
    created_at: datetime
    url: str | None = Field(default=None, description="Where to fetch binary content (images).")


class AssetList(RootModel[list[AssetOut]]):
    """Assets, newest first."""
