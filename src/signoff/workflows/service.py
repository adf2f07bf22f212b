"""Workflow rules: saving drafted plans, editing drafts, activation, archiving, plan emails.

Services never commit; endpoints own the transaction. The planner (an LLM call) runs between
transactions, never inside one.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from pydantic_ai.models import Model
from sqlalchemy import Row, update
from sqlalchemy.ext.asyncio import AsyncSession

from signoff.approvals.tokens import issue_plan_token, plan_link_ttl, ttl_words
from signoff.audit.service import Actor, record
from signoff.auth import repository as auth_repository
from signoff.auth.service import AuthContext
from signoff.budgets import service as budgets
from signoff.config import Settings
from signoff.db import Database
from signoff.errors import Conflict, ErrorCode, NotFound, Unprocessable
from signoff.kit import cursor
from signoff.kit.clock import utc_now
from signoff.kit.cron import next_fire
from signoff.kit.logging import log_context
from signoff.kit.schemas import EmailSentResponse
from signoff.llm.pricing import estimated_cost_usd
from signoff.mail import service as mail
from signoff.models import (
    LinkDecision,
    Role,
    Run,
    RunTrigger,
    Workflow,
    WorkflowStatus,
    WorkflowStep,
)
from signoff.planner.rules import plan_problems, repair_steps, step_fields
from signoff.planner.schemas import PlannedStep
from signoff.planner.service import DraftedPlan, PlannerFailed, draft_plan
from signoff.queue.jobs import StepJob
from signoff.runs import repository as run_repository
from signoff.runs import service as run_service
from signoff.runs.schemas import RunSummary
from signoff.tools.registry import TOOLS
from signoff.workflows import repository
from signoff.workflows.schemas import (
    CreateWorkflowRequest,
    CreateWorkflowResponse,
    EditStepsRequest,
    ScheduleChange,
    StepIn,
    StepOut,
    WorkflowDetail,
    WorkflowOut,
)

logger = logging.getLogger(__name__)

RUNS_IN_DETAIL = 50


def arm(workflow: Workflow, now: datetime | None = None) -> None:
    """Set the next fire time of an active workflow with a schedule; clear it otherwise."""
    if workflow.status == WorkflowStatus.ACTIVE and workflow.schedule:
        workflow.next_run_at = next_fire(workflow.schedule, workflow.timezone, now or utc_now())
    else:
        workflow.next_run_at = None


async def get_visible(
    session: AsyncSession, auth: AuthContext, workflow_id: str, minimum: Role = Role.MEMBER
) -> Workflow:
    """A workflow of any of the user's teams, with the role check; another team's is a 404."""
    workflow = await repository.get_in_teams(session, workflow_id, auth.team_ids)
    if workflow is None:
        raise NotFound("No workflow with this id.", code=ErrorCode.WORKFLOW_NOT_FOUND)
    auth.require_role(workflow.team_id, minimum)
    return workflow


async def save_draft(
    session: AsyncSession,
    settings: Settings,
    *,
    auth: AuthContext,
    goal: str,
    schedule: str | None,
    timezone: str,
    plan: DraftedPlan,
) -> tuple[Workflow, list[str]]:
    """Save a drafted plan as a draft workflow and email the plan to the team's owners."""
    workflow = Workflow(
        team_id=auth.current_team_id,
        created_by=auth.user_id,
        title=plan.title,
        goal=goal,
        schedule=schedule,
        timezone=timezone,
        planned_by=plan.model_name,
        status=WorkflowStatus.DRAFT,
        plan_revision=1,
    )
    workflow.steps = [WorkflowStep(**step_fields(step)) for step in plan.steps]
    session.add(workflow)
    await session.flush()
    emailed = await send_plan_email(session, settings, workflow)
    return workflow, emailed


async def send_plan_email(
    session: AsyncSession, settings: Settings, workflow: Workflow
) -> list[str]:
    """Email the plan with an "Approve & Activate" link to every member allowed to approve it
    (owners and admins), each with a link of their own that names them."""
    deciders = await auth_repository.decider_recipients(session, settings, workflow.team_id)
    base = settings.public_base_url
    context: dict[str, Any] = {
        "workflow": workflow,
        "steps": workflow.steps,
        "tools": TOOLS,
        "schedule_description": workflow.schedule_description,
        "dashboard_url": f"{base}/dashboard/workflows/{workflow.id}",
        "expires_in": ttl_words(plan_link_ttl(settings)),
    }
    recipients = []
    for user in deciders:
        token = issue_plan_token(
            settings, workflow_id=workflow.id, revision=workflow.plan_revision, recipient_id=user.id
        )
        await mail.enqueue(
            session,
            settings,
            kind="plan_approval",
            to=user.email,
            subject=f"Approve your workflow plan: {workflow.title}",
            template="plan_approval",
            context={
                **context,
                "recipient_name": user.name,
                "approve_url": f"{base}/api/workflows/{workflow.id}/approve?token={token}",
            },
            team_id=workflow.team_id,
        )
        recipients.append(user.email)
    return recipients


def _planned(step: StepIn | WorkflowStep, index: int) -> PlannedStep:
    return PlannedStep(
        step_index=index,
        description=step.description,
        tool_name=step.tool_name,
        tool_input=step.tool_input,
        requires_approval=step.requires_approval,
        approval_prompt=step.approval_prompt,
    )


def _merge(current: Sequence[WorkflowStep], request: EditStepsRequest) -> list[PlannedStep]:
    """``replace`` sets the plan; ``merge`` replaces steps named by stepIndex, appends others."""
    if request.mode == "replace":
        return [_planned(step, index) for index, step in enumerate(request.steps)]
    merged = [_planned(step, step.step_index) for step in current]
    for step in request.steps:
        if step.step_index is None:
            merged.append(_planned(step, len(merged)))
        elif step.step_index < len(merged):
            merged[step.step_index] = _planned(step, step.step_index)
        else:
            raise Unprocessable(
                f"There is no step {step.step_index} to update (the plan has {len(merged)} "
                "steps); leave stepIndex out to add a step.",
                details=[{"field": "steps.stepIndex", "message": "no such step"}],
            )
    return merged


async def edit_steps(
    session: AsyncSession,
    settings: Settings,
    workflow: Workflow,
    request: EditStepsRequest,
    actor: Actor,
) -> list[str]:
    """Change a draft's plan; the revision goes up, old links die, a fresh email goes out."""
    read_revision = workflow.plan_revision
    await repository.lock(session, workflow.id)
    if workflow.status != WorkflowStatus.DRAFT:
        raise Conflict(
            f"Only a draft's plan can be edited; this workflow is {workflow.status}.",
            code=ErrorCode.NOT_DRAFT,
        )
    if workflow.plan_revision != read_revision:  # another edit committed since it was read
        raise Conflict(
            "The plan changed while this edit was made; reload it and edit again.",
            code=ErrorCode.PLAN_CHANGED,
        )
    steps = repair_steps(_merge(workflow.steps, request))
    problems = plan_problems(steps)
    if problems:
        raise Unprocessable(
            "The plan breaks a rule: " + " ".join(problems),
            code=ErrorCode.INVALID_PLAN,
            details=[{"field": "steps", "message": problem} for problem in problems],
        )
    workflow.steps.clear()
    await session.flush()  # delete the old rows before inserting new ones with the same keys
    workflow.steps.extend(WorkflowStep(**step_fields(step)) for step in steps)
    workflow.plan_revision += 1
    workflow.updated_at = utc_now()
    await session.flush()
    record(
        session,
        actor,
        team_id=workflow.team_id,
        action="plan.edit",
        object_type="workflow",
        object_id=workflow.id,
        workflow_id=workflow.id,
        detail=f"Plan revision {workflow.plan_revision} ({request.mode}): {len(steps)} steps.",
    )
    return await send_plan_email(session, settings, workflow)


@dataclass(frozen=True)
class Activation:
    workflow: Workflow
    run: Run
    job: StepJob


async def activate(
    session: AsyncSession,
    settings: Settings,
    workflow_id: str,
    *,
    revision: int,
    actor: Actor,
    token_id: str | None = None,
) -> Activation:
    """Approve plan ``revision``: draft → active, and start the first run (as the original
    product does). Exactly one of concurrent approvals wins.

    The conditional UPDATE is the decision: it matches only a draft at that revision, so a
    second click, a second tab or a dashboard approval racing an email link all find nothing
    to update and are told why.
    """
    now = utc_now()
    result = await session.execute(
        update(Workflow)
        .where(
            Workflow.id == workflow_id,
            Workflow.status == WorkflowStatus.DRAFT,
            Workflow.plan_revision == revision,
        )
        .values(status=WorkflowStatus.ACTIVE, activated_at=now, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    workflow = await repository.get_with_steps(session, workflow_id, fresh=True)
    if workflow is None:
        raise NotFound("No workflow with this id.", code=ErrorCode.WORKFLOW_NOT_FOUND)
    if result.rowcount != 1:  # type: ignore[attr-defined]
        check_plan_decidable(workflow, revision)
        raise Conflict("This plan was already approved.", code=ErrorCode.ALREADY_DECIDED)
    session.add(
        LinkDecision(
            team_id=workflow.team_id,
            workflow_id=workflow.id,
            subject=f"plan:{workflow.id}:{revision}",
            kind="plan_approval",
            action="approve",
            token_id=token_id,
            decided_by=actor.user_id,
            via=actor.channel.value,
        )
    )
    await session.flush()
    arm(workflow, now)
    run, job = await run_service.start_run(
        session, settings, workflow, trigger=RunTrigger.APPROVAL, started_by=actor.user_id
    )
    record(
        session,
        actor,
        team_id=workflow.team_id,
        action="plan.approve",
        object_type="workflow",
        object_id=workflow.id,
        workflow_id=workflow.id,
        detail=f"Plan revision {revision} approved; the workflow is active, run "
        f"{run.run_number} started." + (f" Link {token_id}." if token_id else ""),
    )
    return Activation(workflow=workflow, run=run, job=job)


def plan_approved_notice(activation: Activation) -> str:
    """What a plan approval did and what comes next, for the page it lands on."""
    workflow = activation.workflow
    started = (
        f"Plan approved: “{workflow.title}” is active and its first run (run "
        f"{activation.run.run_number}) started."
    )
    if workflow.next_run_at is None:
        return f"{started} After that it runs when someone starts it."
    zone = ZoneInfo(workflow.timezone)
    upcoming = workflow.next_run_at.replace(tzinfo=workflow.next_run_at.tzinfo or UTC)
    local = upcoming.astimezone(zone)
    return f"{started} Next scheduled run: {local:%a %d %b %Y, %H:%M} ({workflow.timezone})."


async def approve_signed_in(
    session: AsyncSession,
    settings: Settings,
    workflow: Workflow,
    actor: Actor,
    revision: int | None = None,
) -> Activation:
    """A signed-in admin approves the plan (API or dashboard): the revision they reviewed,
    which must still be the plan's (409 ``plan_changed``: someone edited it meanwhile), or
    without one the current revision."""
    return await activate(
        session,
        settings,
        workflow.id,
        revision=workflow.plan_revision if revision is None else revision,
        actor=actor,
    )


def check_plan_decidable(workflow: Workflow, revision: int) -> None:
    """Raise the reason why plan ``revision`` can no longer be approved, if there is one."""
    if workflow.status == WorkflowStatus.ARCHIVED:
        raise Conflict(
            "This workflow was archived; there is nothing to approve.", code=ErrorCode.ARCHIVED
        )
    if workflow.plan_revision != revision:
        raise Conflict(
            "The plan changed after this version was shown or sent: approve the newest one "
            "(its email, or the workflow's page).",
            code=ErrorCode.PLAN_CHANGED,
        )
    if workflow.status != WorkflowStatus.DRAFT:
        raise Conflict("This plan was already approved.", code=ErrorCode.ALREADY_DECIDED)


async def archive(session: AsyncSession, workflow: Workflow, actor: Actor) -> None:
    await repository.lock(session, workflow.id)  # a run starting now finishes first, and shows
    if workflow.status == WorkflowStatus.ARCHIVED:
        raise Conflict("This workflow is already archived.", code=ErrorCode.ALREADY_ARCHIVED)
    if await run_repository.active_run(session, workflow.id) is not None:
        raise Conflict(
            "A run of this workflow is active; stop it or let it finish before archiving.",
            code=ErrorCode.RUN_ACTIVE,
        )
    now = utc_now()
    workflow.status = WorkflowStatus.ARCHIVED
    workflow.archived_at = now
    workflow.updated_at = now
    arm(workflow)  # disarmed: an archived workflow has no next fire
    await session.flush()
    record(
        session,
        actor,
        team_id=workflow.team_id,
        action="workflow.archive",
        object_type="workflow",
        object_id=workflow.id,
        workflow_id=workflow.id,
        detail=f"Archived “{workflow.title}”.",
    )


async def change_schedule(
    session: AsyncSession, workflow: Workflow, change: ScheduleChange, actor: Actor
) -> None:
    """Change or remove the schedule (and its timezone); an active workflow is re-armed."""
    await repository.lock(session, workflow.id)  # armed by the status as it is now
    if workflow.status == WorkflowStatus.ARCHIVED:
        raise Conflict("An archived workflow has no schedule to change.", code=ErrorCode.ARCHIVED)
    before = _schedule_words(workflow)
    if "schedule" in change.model_fields_set:
        workflow.schedule = change.schedule
    if change.timezone is not None:
        workflow.timezone = change.timezone
    workflow.updated_at = utc_now()
    arm(workflow)
    await session.flush()
    record(
        session,
        actor,
        team_id=workflow.team_id,
        action="schedule.change",
        object_type="workflow",
        object_id=workflow.id,
        workflow_id=workflow.id,
        detail=f"Schedule {before} → {_schedule_words(workflow)}.",
    )


def _schedule_words(workflow: Workflow) -> str:
    return f"'{workflow.schedule}' ({workflow.timezone})" if workflow.schedule else "none"


def workflow_out(workflow: Workflow) -> WorkflowOut:
    return WorkflowOut(
        id=workflow.id,
        title=workflow.title,
        goal=workflow.goal,
        status=workflow.status,
        schedule=workflow.schedule,
        schedule_description=workflow.schedule_description,
        timezone=workflow.timezone,
        next_run_at=workflow.next_run_at,
        plan_revision=workflow.plan_revision,
        planned_by=workflow.planned_by,
        created_at=workflow.created_at,
        updated_at=workflow.updated_at,
        activated_at=workflow.activated_at,
    )


def steps_out(workflow: Workflow) -> list[StepOut]:
    return [StepOut.model_validate(step) for step in workflow.steps]


# The list's columns follow its schemas: a workflow's fields (WorkflowOut), then its latest
# run's (RunSummary), each read straight from the column of the same name.
_WORKFLOW_KEYS = [field.alias or name for name, field in WorkflowOut.model_fields.items()]
# A run's fields that are not columns: _item computes them.
_COMPUTED_RUN_FIELDS = frozenset({"estimated_cost_usd"})
_RUN_FIELDS = [name for name in RunSummary.model_fields if name not in _COMPUTED_RUN_FIELDS]
_RUN_KEYS = [RunSummary.model_fields[name].alias or name for name in _RUN_FIELDS]
# The latest run's model name (for its cost) closes the run's columns.
_LIST_COLUMNS = [
    *(getattr(Workflow, name) for name in WorkflowOut.model_fields),
    *(getattr(Run, name) for name in _RUN_FIELDS),
    Run.model_name,
]
_RUN_START = len(_WORKFLOW_KEYS)


@dataclass(frozen=True)
class WorkflowPage:
    """Workflows as the API sends them (WorkflowListItem's wire dicts, built from the rows
    with no model in between) and the cursors of the pages around them (None: no such page)."""

    items: list[dict[str, Any]]
    next_cursor: str | None = None
    previous_cursor: str | None = None


def encode_cursor(item: dict[str, Any]) -> str:
    """A position in the list: the item's creation time and id."""
    return cursor.encode("workflows", item["createdAt"].isoformat(), item["id"])


def decode_cursor(text: str) -> tuple[datetime, str]:
    """The (created_at, id) a cursor of :func:`encode_cursor` names; anything else is a 422."""
    stamp, workflow_id = cursor.decode("workflows", text, 2)
    # Nothing a column cannot compare with: an aware time within range, a printable id.
    try:
        created_at = datetime.fromisoformat(stamp).astimezone(UTC)
    except (ValueError, OverflowError):
        raise cursor.invalid() from None
    if stamp[-6:] != "+00:00" or not (workflow_id.isascii() and workflow_id.isprintable()):
        raise cursor.invalid()
    return created_at, workflow_id


def _item(settings: Settings, row: Row[Any]) -> dict[str, Any]:
    values: tuple[Any, ...] = tuple(row)
    item = dict(zip(_WORKFLOW_KEYS, values, strict=False))
    item["stepCount"] = values[-1]
    if values[_RUN_START] is None:
        item["latestRun"] = None
        return item
    run = dict(zip(_RUN_KEYS, values[_RUN_START:-2], strict=True))
    run["estimatedCostUsd"] = estimated_cost_usd(
        settings, values[-2], run["inputTokens"], run["outputTokens"]
    )
    item["latestRun"] = run
    return item


async def list_page(
    session: AsyncSession,
    settings: Settings,
    team_id: str,
    *,
    limit: int | None = None,
    cursor: str | None = None,
    backwards: bool = False,
) -> WorkflowPage:
    """The team's workflows, newest first, each with its step count and latest run: all of
    them, or ``limit`` after ``cursor`` (``backwards``: the ``limit`` before it). One
    statement; the rows become the answer's dicts directly (a model per row would cost more
    than the query)."""
    position = None if cursor is None else decode_cursor(cursor)
    rows = list(
        await repository.list_page(
            session,
            team_id,
            _LIST_COLUMNS,
            limit=None if limit is None else limit + 1,
            after=None if backwards else position,
            before=position if backwards else None,
        )
    )
    more = limit is not None and len(rows) > limit
    if backwards:
        rows = rows[:limit][::-1]
    items = [_item(settings, row) for row in rows[:limit]]
    if not items:
        return WorkflowPage(items)
    first, last = encode_cursor(items[0]), encode_cursor(items[-1])
    if backwards:
        return WorkflowPage(items, next_cursor=last, previous_cursor=first if more else None)
    return WorkflowPage(
        items,
        next_cursor=last if more else None,
        previous_cursor=first if position is not None else None,
    )


async def load_detail(
    session: AsyncSession, settings: Settings, workflow: Workflow, *, all_runs: bool = False
) -> WorkflowDetail:
    """The workflow with its steps and its runs: the latest 50, or all."""
    runs = await run_repository.list_runs(
        session, workflow.id, limit=None if all_runs else RUNS_IN_DETAIL
    )
    return WorkflowDetail(
        **workflow_out(workflow).model_dump(),
        workflow_steps=steps_out(workflow),
        workflow_runs=[run_service.run_summary(settings, run) for run in runs],
    )


def emailed_message(emailed: list[str], unverified: Sequence[str] = ()) -> str:
    """Who got the approval email and, in production, which owners did not and why."""
    held_back = (
        f" Not emailed: {', '.join(unverified)}, because "
        f"{'that address is' if len(unverified) == 1 else 'those addresses are'} not verified "
        "yet (workflow emails go only to verified addresses; open the verification email "
        "sent at signup, or ask for a new one)."
        if unverified
        else ""
    )
    if not emailed:
        return (
            "No owner or admin of this team could be emailed; approve the plan from the dashboard."
            + held_back
        )
    return f"Check your email: the approval link went to {', '.join(emailed)}.{held_back}"


async def create(
    db: Database, model: Model, settings: Settings, auth: AuthContext, body: CreateWorkflowRequest
) -> CreateWorkflowResponse:
    """Draft a plan for the goal, save it as a draft and email it for approval.

    Owns its two transactions: the planner's model call runs between them, with none open. The
    first counts the draft against the team's budgets (429 when one is used up), so a draft in
    flight counts too; the second records what it cost.
    """
    async with db.write() as session:
        draft_id = await budgets.reserve_plan_draft(
            session, settings, auth.current_team_id, auth.user_id
        )
        team_name, core_memory = await repository.team_name_and_core_memory(
            session, auth.current_team_id
        )
    try:
        plan = await draft_plan(
            model, goal=body.goal, team_name=team_name, core_memory=core_memory, settings=settings
        )
    except PlannerFailed as failed:
        # Tokens spent on a plan that could not be had count against the day's budget too.
        async with db.write() as session:
            await budgets.record_plan_usage(
                session, draft_id, failed.input_tokens, failed.output_tokens
            )
        raise
    async with db.write() as session:
        await budgets.record_plan_usage(session, draft_id, plan.input_tokens, plan.output_tokens)
        workflow, emailed = await save_draft(
            session,
            settings,
            auth=auth,
            goal=body.goal,
            schedule=body.schedule,
            timezone=body.timezone,
            plan=plan,
        )
        unverified = await auth_repository.unverified_deciders(session, settings, workflow.team_id)
    # The planner ran before the workflow existed; its line names the workflow it drafted.
    with log_context(workflow=workflow.id):
        logger.info(
            "plan drafted by %s: %d steps, %d tokens in, %d out",
            plan.model_name,
            len(plan.steps),
            plan.input_tokens,
            plan.output_tokens,
        )
    return CreateWorkflowResponse(
        workflow_id=workflow.id,
        title=workflow.title,
        steps=steps_out(workflow),
        message=f"Plan drafted by {plan.model_name}. {emailed_message(emailed, unverified)}",
        planned_by=plan.model_name,
        emailed_to=emailed,
    )


async def resend_plan_email(
    session: AsyncSession, settings: Settings, workflow: Workflow
) -> EmailSentResponse:
    """A fresh plan approval email, for a draft whose link expired."""
    if workflow.status != WorkflowStatus.DRAFT:
        raise Conflict(
            f"Only a draft waits for plan approval; this workflow is {workflow.status}.",
            code=ErrorCode.NOT_DRAFT,
        )
    emailed = await send_plan_email(session, settings, workflow)
    unverified = await auth_repository.unverified_deciders(session, settings, workflow.team_id)
    return EmailSentResponse(message=emailed_message(emailed, unverified), emailed_to=emailed)
