"""The plan the planner model submits: a title and 1–20 steps.

Field names are camelCase on the wire (``stepIndex``, ``toolName``, …), the same shape as a step
in the API, so what the model writes, what the offline model drafts and what a person edits
look alike. The field descriptions are part of the prompt: real models read them in the tool's
JSON schema.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, StringConstraints, field_validator

from signoff.kit.schemas import ApiModel
from signoff.planner.rules import MAX_STEPS, MAX_TITLE_LENGTH
from signoff.tools.registry import TOOLS, ToolName


class PlannedStep(ApiModel):
    """One step of the plan: what a person reads, and the one tool it runs."""

    step_index: int = Field(description="Position of the step in the plan, counting from 0.")
    description: Annotated[str, StringConstraints(strip_whitespace=True)] = Field(
        min_length=1,
        max_length=500,
        description=(
            "What the step does, in one plain sentence for the person who approves the plan, "
            "e.g. 'Search the web for this week's AI news'."
        ),
    )
    tool_name: ToolName = Field(description="The one tool this step uses.")
    tool_input: dict[str, Any] = Field(
        description=(
            "Concrete inputs for the tool, worked out from the goal now "
            "(e.g. {'query': '...'}, {'url': '...'}, {'platform': 'linkedin'})."
        ),
    )
    requires_approval: bool = Field(
        description="True when a person must approve the step's output before the run goes on."
    )
    approval_prompt: str | None = Field(
        description="What the approver should check; null when no approval is needed."
    )

    @field_validator("tool_name", mode="before")
    @classmethod
    def _known_tool(cls, value: object) -> object:
        # Pydantic's own message for a Literal is a long enumeration; this one says what is
        # wrong in words the model (it goes back to it as a retry) and a person understand.
        if isinstance(value, str) and value not in TOOLS:
            raise ValueError(f"{value!r} is not one of the tools; use only {', '.join(TOOLS)}")
        return value


class Plan(ApiModel):
    """The plan for the goal: a short title and the steps in the order they run."""

    title: Annotated[str, StringConstraints(strip_whitespace=True)] = Field(
        min_length=1,
        description=f"What the workflow does, at most {MAX_TITLE_LENGTH} characters.",
    )
    steps: list[PlannedStep] = Field(
        description=f"1 to {MAX_STEPS} steps, in the order they run.",
    )


PLAN_TOOL_NAME = "submit_plan"
"""The output tool the planner model calls with the :class:`Plan` as its arguments."""
