"""The plan rules (docs/api.md, The planner), checked in code whatever a model (or a person
editing) said.

Used by the planner (problems go back to the model) and by plan edits (problems are a 422).
"""

from __future__ import annotations

from typing import Any, Protocol, TypeVar

from signoff.tools.registry import TOOLS

MAX_STEPS = 20
MAX_TITLE_LENGTH = 60


class StepLike(Protocol):
    step_index: int
    requires_approval: bool

    @property
    def tool_name(self) -> str: ...


S = TypeVar("S", bound=StepLike)


def repair_steps(steps: list[S]) -> list[S]:
    """Silent repairs: publishing tools always need approval; indexes are 0..n-1 in order."""
    for index, step in enumerate(steps):
        step.step_index = index
        spec = TOOLS.get(step.tool_name)
        if spec is not None and spec.requires_approval:
            step.requires_approval = True
    return steps


def plan_problems(steps: list[S]) -> list[str]:
    """What is wrong with a plan, as sentences a model (or a person) can act on."""
    problems = []
    if not steps:
        problems.append("The plan has no steps; it needs between 1 and 20.")
    elif len(steps) > MAX_STEPS:
        problems.append(f"The plan has {len(steps)} steps; it may have at most {MAX_STEPS}.")
    seen_outline = False
    for position, step in enumerate(steps):
        if step.tool_name not in TOOLS:
            problems.append(
                f"Step {position} uses the unknown tool '{step.tool_name}'; "
                f"use one of: {', '.join(TOOLS)}."
            )
        if step.tool_name == "generate_outline":
            seen_outline = True
        if step.tool_name == "format_post" and not seen_outline:
            problems.append(
                f"Step {position} uses format_post with no generate_outline step before it; "
                "add a generate_outline step earlier in the plan."
            )
    return problems


def shorten_title(title: str) -> str:
    """A title of at most 60 characters, cut at a word boundary."""
    title = " ".join(title.split())
    if len(title) <= MAX_TITLE_LENGTH:
        return title
    cut = title[: MAX_TITLE_LENGTH + 1].rsplit(" ", 1)[0]
    if not cut or len(cut) > MAX_TITLE_LENGTH:
        cut = title[:MAX_TITLE_LENGTH]
    return cut.rstrip(" ,;:-–—")


def step_fields(step: Any) -> dict[str, Any]:
    """The six fields that define a plan step, to copy it into another row (a draft's steps,
    a run's step log): one list, so a field added to plans reaches every copy."""
    return {
        "step_index": step.step_index,
        "description": step.description,
        "tool_name": step.tool_name,
        "tool_input": step.tool_input,
        "requires_approval": step.requires_approval,
        "approval_prompt": step.approval_prompt,
    }
