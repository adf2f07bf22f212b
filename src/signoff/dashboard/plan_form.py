"""The plan editor's form: one fieldset per step, plus an empty one to add a step.

Fields are named ``<field>-<index>``. Each step has a "Position" number, its place in the saved
plan: a step given another number moves there, and a new step given one is inserted there
(no script needed; see :func:`in_order`). The form is turned into the API's own request
(:class:`EditStepsRequest`, mode ``replace``), so a plan edited here obeys exactly the rules
of ``POST /api/workflows/{id}/steps``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError
from starlette.datastructures import FormData

from signoff.models import WorkflowStep
from signoff.planner.rules import MAX_STEPS
from signoff.workflows.schemas import EditStepsRequest, StepIn


@dataclass
class StepRow:
    """One step as the form shows it (the tool input as JSON text)."""

    description: str = ""
    tool_name: str = ""
    tool_input: str = "{}"
    requires_approval: bool = False
    approval_prompt: str = ""
    remove: bool = False
    # Where the step was (1-based; 0 for a new one) and the position the form asks for.
    place: int = 0
    position: str = ""
    errors: list[str] = field(default_factory=list)

    @property
    def moved_to(self) -> int | None:
        """The position asked for, if it is not where the step already is."""
        wanted = int(self.position) if self.position.isdigit() else 0
        return wanted if wanted > 0 and wanted != self.place else None


def in_order(rows: list[StepRow]) -> list[StepRow]:
    """The kept steps in their new order: the steps that stay keep their order, then each
    moved or positioned new step, lowest position first, is inserted at its position."""
    kept = [row for row in rows if not row.remove and (row.description or row.tool_name)]
    ordered = [row for row in kept if row.moved_to is None]
    moved = [(to, row) for row in kept if (to := row.moved_to) is not None]
    for position, row in sorted(moved, key=lambda pair: pair[0]):
        ordered.insert(position - 1, row)
    return ordered


def rows_of(steps: Sequence[WorkflowStep]) -> list[StepRow]:
    return [
        StepRow(
            description=step.description,
            tool_name=step.tool_name,
            tool_input=json.dumps(step.tool_input, indent=2, ensure_ascii=False),
            requires_approval=step.requires_approval,
            approval_prompt=step.approval_prompt or "",
            place=number,
            position=str(number),
        )
        for number, step in enumerate(steps, start=1)
    ]


def read_rows(form: FormData) -> list[StepRow]:
    """Every fieldset the form sent, in order (``count`` says how many, the blank one too)."""
    count = str(form.get("count", "0"))
    total = min(int(count), MAX_STEPS + 1) if count.isdigit() else 0

    def text(name: str) -> str:
        value = form.get(name)
        return value.strip() if isinstance(value, str) else ""

    return [
        StepRow(
            description=text(f"description-{i}"),
            tool_name=text(f"tool-{i}"),
            tool_input=text(f"input-{i}") or "{}",
            requires_approval=f"approval-{i}" in form,
            approval_prompt=text(f"prompt-{i}"),
            remove=f"remove-{i}" in form,
            place=int(place) if (place := text(f"place-{i}")).isdigit() else 0,
            position=text(f"position-{i}"),
        )
        for i in range(total)
    ]


def _problem(error: Any) -> str:
    where = str(error["loc"][0]) if error.get("loc") else ""
    label = {"description": "Description", "tool_name": "Tool", "approval_prompt": "Prompt"}
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{label.get(where, where)}: {message}" if where in label else message


def to_request(rows: list[StepRow]) -> tuple[EditStepsRequest | None, list[str]]:
    """The edit request; or None, with each row's problems written on it and the plan's
    problems returned."""
    steps: list[StepIn] = []
    for row in in_order(rows):  # without the removed steps and the blank one left empty
        try:
            tool_input = json.loads(row.tool_input)
        except json.JSONDecodeError as exc:
            row.errors.append(f"Tool input is not valid JSON ({exc.msg}, line {exc.lineno}).")
            continue
        if not isinstance(tool_input, dict):
            row.errors.append('Tool input must be a JSON object, like {"query": "…"}.')
            continue
        try:
            steps.append(
                StepIn(
                    description=row.description,
                    tool_name=row.tool_name,
                    tool_input=tool_input,
                    requires_approval=row.requires_approval,
                    approval_prompt=row.approval_prompt or None,
                )
            )
        except ValidationError as exc:
            row.errors.extend(_problem(error) for error in exc.errors())
    if any(row.errors for row in rows):
        return None, ["Some steps need a fix: see below."]
    try:
        return EditStepsRequest(steps=steps, mode="replace"), []
    except ValidationError:
        # The only rule left at this level: between 1 and 20 steps.
        return None, [f"A plan needs between 1 and {MAX_STEPS} steps; this one has {len(steps)}."]
