"""Drafting a plan: one structured-output LLM call, then the plan rules in code.

The model submits the plan by calling the ``submit_plan`` output tool; :func:`_enforce_plan_rules`
repairs it or sends it back, and :func:`draft_plan` turns every failure into :class:`PlannerFailed`
(502), never a 500. The rules live in :mod:`signoff.planner.rules`, shared with plan edits.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from pydantic import ValidationError
from pydantic_ai import Agent, ModelRetry, ToolOutput
from pydantic_ai.exceptions import (
    AgentRunError,
    ModelAPIError,
    ModelConnectionError,
    ModelHTTPError,
    ModelRequestTimeout,
    ModelTimeoutError,
    UnexpectedModelBehavior,
)
from pydantic_ai.models import Model
from pydantic_ai.usage import RunUsage

from signoff.config import Settings
from signoff.errors import ErrorCode, UpstreamFailed
from signoff.llm.models import model_label, model_settings
from signoff.planner.prompts import PLANNER_INSTRUCTIONS, render_planner_prompt
from signoff.planner.rules import plan_problems, repair_steps, shorten_title
from signoff.planner.schemas import PLAN_TOOL_NAME, Plan, PlannedStep

logger = logging.getLogger(__name__)

PLANNER_RETRIES = 2
"""How many times a rejected plan goes back to the model: at most 1 + 2 model requests."""


class PlannerFailed(UpstreamFailed):
    """The plan could not be drafted: the provider failed or kept proposing an invalid plan.
    Carries what the failed attempts cost (the budget counts tokens spent either way)."""

    code = ErrorCode.PLANNER_FAILED

    def __init__(self, message: str, *, input_tokens: int = 0, output_tokens: int = 0) -> None:
        super().__init__(message)
        self.input_tokens = input_tokens
        self.output_tokens = output_tokens


@dataclass(frozen=True)
class DraftedPlan:
    """A plan that satisfies every rule, and what drafting it cost."""

    title: str
    steps: list[PlannedStep]
    model_name: str
    """The model that drafted it, as its provider names it (``offline``, ``gpt-4o-2024-…``)."""
    input_tokens: int
    output_tokens: int
    requests: int


_planner = Agent(
    output_type=ToolOutput(
        Plan,
        name=PLAN_TOOL_NAME,
        description="Submit the plan for the goal: a short title and the steps in order.",
        # toolInput is a free-form object (its keys depend on the tool), which OpenAI's strict
        # mode cannot express; the schema is checked here instead, and mistakes go back to
        # the model.
        strict=False,
    ),
    instructions=PLANNER_INSTRUCTIONS,
    retries={"output": PLANNER_RETRIES},
    name="planner",
)


class _PlanRejected(ModelRetry):
    """Sends the reasons back to the model; keeps them for the error a person reads."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(
            "The plan was not accepted: "
            + " ".join(problems)
            + f" Call {PLAN_TOOL_NAME} again with the corrected plan."
        )


@_planner.output_validator
def _enforce_plan_rules(plan: Plan) -> Plan:
    """The plan rules, applied whatever the model said (docs/api.md, The planner).

    Sent back to the model with the reasons (:class:`_PlanRejected`), what only it can fix: no
    steps or more than 20, a ``format_post`` with no ``generate_outline`` before it (a tool
    outside the eight is already refused by the schema, with its own reason); after
    :data:`PLANNER_RETRIES` more tries the run fails and :func:`draft_plan` raises. Repaired
    silently, what has one right answer: ``format_post`` and ``generate_image`` steps always
    require approval, ``stepIndex`` is renumbered 0..n-1 in the given order, a title over 60
    characters is shortened at a word.
    """
    # The rules are shared with plan edits; they read and repair any step-shaped object.
    problems = plan_problems(plan.steps)
    if problems:
        raise _PlanRejected(problems)
    repair_steps(plan.steps)  # in place: plan.steps now holds the repaired steps
    return plan.model_copy(update={"title": shorten_title(plan.title)})


async def draft_plan(
    model: Model,
    *,
    goal: str,
    team_name: str,
    core_memory: str | None,
    settings: Settings,
) -> DraftedPlan:
    """Ask ``model`` for a plan for ``goal``; :class:`PlannerFailed` when none can be had.

    Provider failures (HTTP errors, timeouts, an unreachable server, nonsense answers) and a
    plan still invalid after the retries all become :class:`PlannerFailed`, with a sentence
    that says what went wrong (:func:`_failure_reason`); the caller then saves nothing.
    No database transaction may be open around this call: it waits on the model.
    """
    prompt = render_planner_prompt(goal=goal, team_name=team_name, core_memory=core_memory)
    spent = RunUsage()  # counts every request, also those of a run that fails
    try:
        result = await _planner.run(
            prompt, model=model, model_settings=model_settings(settings), usage=spent
        )
    except AgentRunError as exc:
        reason = _failure_reason(exc, settings)
        logger.warning("Planner failed with %s: %s (%r)", model_label(model), reason, exc)
        raise PlannerFailed(
            f"The plan could not be drafted: {reason}.",
            input_tokens=spent.input_tokens,
            output_tokens=spent.output_tokens,
        ) from exc
    plan = result.output
    usage = result.usage
    return DraftedPlan(
        title=plan.title,
        steps=plan.steps,
        model_name=result.response.model_name or model.model_name,
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        requests=usage.requests,
    )


def _failure_reason(exc: AgentRunError, settings: Settings) -> str:
    """Why drafting failed, in words for the person who asked for the plan."""
    if isinstance(exc, ModelTimeoutError | ModelRequestTimeout):
        return f"the model did not answer within {settings.llm_timeout_seconds:g} seconds"
    if isinstance(exc, ModelHTTPError):
        status = exc.status_code
        if status == 429:
            what = "is rate-limiting requests or the quota is used up; try again later"
        elif status in (401, 403):
            what = "refused the API key (check SIGNOFF_LLM_API_KEY)"
        elif status == 404:
            what = f"does not know the model {exc.model_name!r} (check SIGNOFF_LLM_MODEL)"
        elif status >= 500:
            what = "failed; try again in a moment"
        else:
            what = "refused the request"
        return f"the model provider {what} (HTTP {status})"
    if isinstance(exc, ModelConnectionError):
        return "the model provider could not be reached"
    if isinstance(exc, ModelAPIError):
        return f"the model provider failed ({exc.message})"
    if isinstance(exc, UnexpectedModelBehavior):
        last = exc.__cause__
        if isinstance(last, _PlanRejected):
            return (
                f"the model kept proposing an invalid plan after {PLANNER_RETRIES + 1} "
                f"attempts ({' '.join(last.problems)})"
            )
        if isinstance(last, ValidationError):
            errors = "; ".join(
                f"{'.'.join(map(str, error['loc']))}: {error['msg'].removeprefix('Value error, ')}"
                for error in last.errors()[:3]
            )
            return (
                f"the model kept proposing a plan that does not fit the plan's schema after "
                f"{PLANNER_RETRIES + 1} attempts ({errors})"
            )
        return f"the model kept answering with something other than a plan ({exc.message})"
    return f"the model run failed ({exc.message})"
