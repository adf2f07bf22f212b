"""Per-team budgets (OWASP API4, unrestricted resource consumption): README, Budgets.

Three budgets, each counted from the database, so they hold however many processes and
machines serve the team, and each off when its setting is 0:

- plan drafts per rolling hour (``SIGNOFF_TEAM_PLANS_PER_HOUR``): every request for a plan
  the model drafts, failed ones included (they cost tokens too); a ``plan_drafts`` row is
  written *before* the model is asked, so drafts in flight count;
- runs started by hand per rolling hour (``SIGNOFF_TEAM_RUNS_PER_HOUR``): scheduled fires and
  the run an approval starts are not limited by it (an admin approved those schedules and
  plans), but every run is limited by the token budget;
- LLM tokens per UTC day (``SIGNOFF_TEAM_TOKENS_PER_DAY``): the tokens of the team's run steps
  that started or finished today, plus today's plan drafts. A manual run start or a plan
  draft is refused once it is used up, and the engine checks it before every step's model
  call (``runs.executor``): a run that reaches the limit fails at that step, saying why.

A refusal is :class:`BudgetExceeded` (429, ``budget_exceeded``) with ``Retry-After``: the
seconds until the window frees a slot (the oldest counted event leaves the hour), or until
the next UTC midnight for tokens. The checks lock the team's row first, so on PostgreSQL
two concurrent requests cannot both take the last slot (SQLite's writes are serial anyway).
"""

from __future__ import annotations

import math
from datetime import datetime, time, timedelta
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from signoff.auth import repository as auth_repository
from signoff.config import Settings
from signoff.errors import ErrorCode, TooManyRequests
from signoff.kit.clock import utc_now
from signoff.kit.openapi import error_response
from signoff.models import PlanDraft, Run, RunStep, RunTrigger

HOUR = timedelta(hours=1)


class BudgetExceeded(TooManyRequests):
    def __init__(self, message: str, *, retry_after_seconds: int) -> None:
        super().__init__(
            message, retry_after_seconds=retry_after_seconds, code=ErrorCode.BUDGET_EXCEEDED
        )


def _seconds_until(moment: datetime, now: datetime) -> int:
    return max(1, math.ceil((moment - now).total_seconds()))


def day_start(now: datetime) -> datetime:
    """The start of ``now``'s UTC day: the token budget's window."""
    return datetime.combine(now.date(), time(0), tzinfo=now.tzinfo)


def _in_words(seconds: int) -> str:
    minutes = math.ceil(seconds / 60)
    if minutes < 120:
        return f"{minutes} minute{'' if minutes == 1 else 's'}"
    return f"{math.ceil(minutes / 60)} hours"


async def tokens_used_today(session: AsyncSession, team_id: str, now: datetime) -> int:
    """The team's LLM tokens of the UTC day: run steps that started or finished today (a step's
    count includes its earlier attempts), and plan drafts asked for today."""
    start = day_start(now)
    steps = await session.scalar(
        select(func.coalesce(func.sum(RunStep.input_tokens + RunStep.output_tokens), 0))
        .join(Run, Run.id == RunStep.run_id)
        .where(
            Run.team_id == team_id,
            or_(Run.finished_at.is_(None), Run.finished_at >= start),
            or_(RunStep.started_at >= start, RunStep.finished_at >= start),
        )
    )
    drafts = await session.scalar(
        select(func.coalesce(func.sum(PlanDraft.input_tokens + PlanDraft.output_tokens), 0)).where(
            PlanDraft.team_id == team_id, PlanDraft.requested_at >= start
        )
    )
    return int(steps or 0) + int(drafts or 0)


async def token_budget_problem(
    session: AsyncSession, settings: Settings, team_id: str, now: datetime | None = None
) -> str | None:
    """Why the team may not spend more tokens today (a sentence), or None when it may."""
    budget = settings.team_tokens_per_day
    if budget == 0:
        return None
    now = now or utc_now()
    used = await tokens_used_today(session, team_id, now)
    if used < budget:
        return None
    return (
        f"The team's LLM token budget for today is used up ({used:,} of {budget:,} tokens, "
        "SIGNOFF_TEAM_TOKENS_PER_DAY); it frees at 00:00 UTC"
    )


async def _check_tokens(
    session: AsyncSession, settings: Settings, team_id: str, now: datetime
) -> None:
    problem = await token_budget_problem(session, settings, team_id, now)
    if problem is not None:
        wait = _seconds_until(day_start(now) + timedelta(days=1), now)
        raise BudgetExceeded(f"{problem}, in {_in_words(wait)}.", retry_after_seconds=wait)


def _check_hour(
    count: int, oldest: datetime, now: datetime, budget: int, done: str, setting: str
) -> None:
    """:class:`BudgetExceeded` when ``count`` events in the last hour reached ``budget``; the
    window frees when the oldest of them leaves it."""
    if count < budget:
        return
    wait = _seconds_until(oldest + HOUR, now)
    raise BudgetExceeded(
        f"This team has {done} in the last hour, its budget "
        f"({setting}={budget}); try again in {_in_words(wait)}.",
        retry_after_seconds=wait,
    )


async def reserve_plan_draft(
    session: AsyncSession,
    settings: Settings,
    team_id: str,
    requested_by: str | None,
    now: datetime | None = None,
) -> int:
    """Count a plan draft against the team's budgets, before the model is asked: the id of its
    ``plan_drafts`` row (for :func:`record_plan_usage`), or :class:`BudgetExceeded`.

    Call it for every plan the model drafts (creation today; a redraft of a plan, if one is
    added, the same way), in a transaction of its own that commits before the model call.
    """
    now = now or utc_now()
    await auth_repository.take_team_turn(session, team_id)
    budget = settings.team_plans_per_hour
    if budget:
        count, oldest = (
            await session.execute(
                select(func.count(), func.min(PlanDraft.requested_at)).where(
                    PlanDraft.team_id == team_id, PlanDraft.requested_at > now - HOUR
                )
            )
        ).one()
        done = f"asked for {count} plan drafts"
        _check_hour(count, oldest, now, budget, done, "SIGNOFF_TEAM_PLANS_PER_HOUR")
    await _check_tokens(session, settings, team_id, now)
    draft = PlanDraft(team_id=team_id, requested_by=requested_by, requested_at=now)
    session.add(draft)
    await session.flush()
    return draft.id


async def record_plan_usage(
    session: AsyncSession, draft_id: int, input_tokens: int, output_tokens: int
) -> None:
    """What a plan draft cost, once the model answered."""
    await session.execute(
        update(PlanDraft)
        .where(PlanDraft.id == draft_id)
        .values(input_tokens=input_tokens, output_tokens=output_tokens)
    )


async def check_run_start(
    session: AsyncSession,
    settings: Settings,
    team_id: str,
    trigger: RunTrigger,
    now: datetime | None = None,
) -> None:
    """:class:`BudgetExceeded` when the team may not start a run by hand now (the hourly count
    of manual starts, or today's tokens). Other triggers pass: see the module docstring."""
    if trigger != RunTrigger.MANUAL:
        return
    now = now or utc_now()
    await auth_repository.take_team_turn(session, team_id)
    budget = settings.team_runs_per_hour
    if budget:
        count, oldest = (
            await session.execute(
                select(func.count(), func.min(Run.started_at)).where(
                    Run.team_id == team_id,
                    Run.trigger == RunTrigger.MANUAL,
                    Run.started_at > now - HOUR,
                )
            )
        ).one()
        done = f"started {count} runs by hand"
        _check_hour(count, oldest, now, budget, done, "SIGNOFF_TEAM_RUNS_PER_HOUR")
    await _check_tokens(session, settings, team_id, now)


# What the routes a budget can refuse declare for the OpenAPI document.
BUDGET_429: dict[int | str, dict[str, Any]] = {
    429: error_response(
        429,
        "A team budget is used up (`budget_exceeded`): plan drafts or manual run starts per "
        "hour, or LLM tokens per day. `Retry-After` says when the window frees.",
    )
}
