"""Bodies of the run endpoints: runs, their step rows, messages, assets, decisions."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field, RootModel

from signoff.audit.schemas import ActedBy
from signoff.kit.schemas import ApiInput, ApiModel
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
    error: str | None
    feedback: str | None
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


class DecisionRequest(ApiInput):
    action: Literal["approve", "reject"]
    note: str | None = Field(default=None, max_length=4000)


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
