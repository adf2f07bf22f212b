"""Run rules: start, stop, decide. Services never commit; they return the jobs to enqueue
after the caller's commit (a crash in between is repaired by the sweep)."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from signoff.audit import repository as audit_repository
from signoff.audit.schemas import ActedBy
from signoff.audit.service import Actor, record
from signoff.auth.service import AuthContext
from signoff.budgets import service as budgets
from signoff.config import Settings
from signoff.errors import Conflict, ErrorCode, NotFound, Unprocessable
from signoff.kit import cursor
from signoff.kit.clock import utc_now
from signoff.kit.logging import log_context
from signoff.kit.schemas import EmailSentResponse
from signoff.llm.pricing import estimated_cost_usd
from signoff.metrics.instruments import APPROVAL_DECISION
from signoff.models import (
    ACTIVE_RUN_STATUSES,
    Asset,
    AssetStatus,
    AuditEvent,
    Conversation,
    LinkDecision,
    Role,
    Run,
    RunStatus,
    RunStep,
    RunTrigger,
    StepStatus,
    Workflow,
    WorkflowStatus,
)
from signoff.planner.rules import step_fields
from signoff.queue.jobs import StepJob, defer
from signoff.runs import conversation, emails, repository
from signoff.runs.schemas import DecisionRequest, RunDetail, RunStepOut, RunSummary
from signoff.runs.states import transition_run, transition_step
from signoff.tools.content import PLATFORM_LIMITS

# The steps whose output an approver may edit before approving: a post's text, an image's caption.
EDITABLE_TOOLS = ("format_post", "generate_image")

logger = logging.getLogger(__name__)

STOPPED_BY_USER = "Stopped by user"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROS = re.compile(r"[0-9]{1,17}")


def encode_cursor(run: Run) -> str:
    """The team runs list's cursor after ``run``: its start (in microseconds) and id."""
    micros = (run.started_at - _EPOCH) // timedelta(microseconds=1)
    return cursor.encode("runs", micros, run.id)


def decode_cursor(text: str) -> tuple[datetime, int]:
    """(started_at, id) of a cursor :func:`encode_cursor` gave out; anything else is a 422."""
    micros, run_id = cursor.decode("runs", text, 2)
    if not _MICROS.fullmatch(micros):
        raise cursor.invalid()
    try:
        started = _EPOCH + timedelta(microseconds=int(micros))
    except OverflowError:
        raise cursor.invalid() from None
    return started, cursor.row_id(run_id)


@dataclass(frozen=True)
class Decision:
    """What a recorded decision did, and the job it queued (None when the run completed)."""

    run: Run
    action: str
    job: StepJob | None
    step_index: int
    edited: bool = False


# What a rejected step's revision is called in the notice, by tool.
_REVISION_NAMES = {"format_post": "post", "generate_image": "image"}


async def decision_notice(session: AsyncSession, decision: Decision, workflow_title: str) -> str:
    """What the decision did and what comes next, in a sentence for the person who took it
    (the page an email link or a dashboard button lands on shows it)."""
    run = decision.run
    decided = f"step {decision.step_index + 1} of run {run.run_number} of “{workflow_title}”"
    if decision.action == "reject":
        step = await repository.get_step(session, run.id, decision.step_index)
        what = _REVISION_NAMES.get(step.tool_name if step else "", "output")
        return (
            f"Changes requested on {decided}: the step runs again with your feedback, and a "
            f"revised {what} will be emailed for approval."
        )
    approved = "Approved with your edits" if decision.edited else "Approved"
    if run.status == RunStatus.COMPLETED:
        return f"{approved} {decided}: that was the last step, so the run is complete."
    following = await repository.get_step(session, run.id, decision.step_index + 1)
    return (
        f"{approved}: run {run.run_number} of “{workflow_title}” continues with step "
        f"{decision.step_index + 2} of {run.step_count}"
        + (f" ({following.description})." if following else ".")
    )


async def start_run(
    session: AsyncSession,
    settings: Settings,
    workflow: Workflow,
    *,
    trigger: RunTrigger,
    started_by: str | None,
) -> tuple[Run, StepJob]:
    """Create a run with its step rows and a new conversation; 409 if one is active, 429 if
    the team's budget refuses a manual start (``budgets.check_run_start``).

    The partial unique index over active runs decides, whichever path started the run.
    """
    _check_runnable(workflow)
    run = await _new_run(
        session,
        settings,
        workflow,
        trigger=trigger,
        started_by=started_by,
        plan_revision=workflow.plan_revision,
        step_count=len(workflow.steps),
    )
    # One executemany (the ORM would insert row by row to read each id back; nobody needs them).
    await session.execute(
        insert(RunStep), [{"run_id": run.id, **step_fields(step)} for step in workflow.steps]
    )
    job = StepJob(run.id, 0, 1)
    defer(session, job)
    return run, job


def _check_runnable(workflow: Workflow) -> None:
    if workflow.status != WorkflowStatus.ACTIVE:
        raise _not_active(workflow.status)
    if not workflow.steps:
        raise Unprocessable("This workflow has no steps.", code=ErrorCode.NO_STEPS)


def _not_active(status: WorkflowStatus) -> Unprocessable:
    return Unprocessable(
        f"Only an active workflow can run; this one is {status}.",
        code=ErrorCode.WORKFLOW_NOT_ACTIVE,
    )


def _run_active() -> Conflict:
    return Conflict(
        "A run of this workflow is already active; wait for it or stop it.",
        code=ErrorCode.RUN_ACTIVE,
    )


async def _new_run(
    session: AsyncSession,
    settings: Settings,
    workflow: Workflow,
    *,
    trigger: RunTrigger,
    started_by: str | None,
    plan_revision: int,
    step_count: int,
    rerun_of: Run | None = None,
    from_step_index: int = 0,
) -> Run:
    """The run's row, numbered, with a new conversation; 409 if a run is active, 429 if the
    team's budget refuses a manual start."""
    await budgets.check_run_start(session, settings, workflow.team_id, trigger)
    # Numbering under the workflow's row lock: runs are 1, 2, 3, … with no gaps. The status is
    # checked again here, on the row as it is now: an archive may have committed since the
    # workflow was read (and one that has not waits for this run, and sees it).
    run_number = await session.scalar(
        update(Workflow)
        .where(Workflow.id == workflow.id, Workflow.status == WorkflowStatus.ACTIVE)
        .values(run_count=Workflow.run_count + 1)
        .returning(Workflow.run_count)
    )
    if run_number is None:  # an active workflow only ever becomes archived
        raise _not_active(WorkflowStatus.ARCHIVED)
    chat = Conversation(team_id=workflow.team_id, workflow_id=workflow.id, niche="workflow")
    session.add(chat)
    await session.flush()
    run = Run(
        workflow_id=workflow.id,
        team_id=workflow.team_id,
        run_number=run_number,
        status=RunStatus.RUNNING,
        trigger=trigger,
        conversation_id=chat.id,
        plan_revision=plan_revision,
        step_count=step_count,
        current_step_index=from_step_index,
        started_by=started_by,
        rerun_of_run_id=rerun_of.id if rerun_of else None,
        rerun_from_step_index=from_step_index if rerun_of else None,
        model_name=settings.llm_model.strip(),
    )
    session.add(run)
    try:
        await session.flush()
    except IntegrityError:
        raise _run_active() from None
    with log_context(workflow=workflow.id, run=run.id, step=from_step_index, attempt_number=1):
        logger.info("run %s started (%s)", run_number, trigger)
    return run


def retry_step_index(run: Run | RunSummary, statuses: Sequence[StepStatus]) -> int:
    """Where a retry of an ended run starts: the step it failed at, or, for a stopped run, the
    first step it did not complete (``statuses``: its steps' statuses, in order)."""
    if run.failed_step_index is not None:
        return run.failed_step_index
    return next(
        (index for index, status in enumerate(statuses) if status != StepStatus.COMPLETED),
        run.step_count - 1,
    )


async def retry(
    session: AsyncSession,
    settings: Settings,
    workflow: Workflow,
    source: Run,
    *,
    started_by: str | None,
) -> tuple[Run, StepJob]:
    """Retry a failed (or stopped) run from the step it ended at: a new run (docs/engine.md,
    Reruns and retries). A completed run has nothing to retry (409 ``nothing_to_retry``)."""
    if source.status in ACTIVE_RUN_STATUSES:
        raise _run_active()
    if source.status != RunStatus.FAILED:
        raise Conflict(
            "This run completed: there is nothing to retry. Rerun it from a step instead.",
            code=ErrorCode.NOTHING_TO_RETRY,
        )
    steps = await repository.list_steps(session, source.id)
    return await rerun(
        session,
        settings,
        workflow,
        source,
        retry_step_index(source, [step.status for step in steps]),
        started_by=started_by,
        source_steps=steps,
    )


def rerunnable_steps(run: Run | RunSummary, statuses: Sequence[StepStatus]) -> int:
    """How many of an ended run's steps a rerun may start at: every step up to and including
    the first one it did not complete (the steps before the start are copied, so they must
    have completed). 0 for an active run. ``statuses``: its steps' statuses, in order."""
    if run.status in ACTIVE_RUN_STATUSES:
        return 0
    completed = 0
    for status in statuses:
        if status != StepStatus.COMPLETED:
            break
        completed += 1
    return min(completed + 1, run.step_count)


async def rerun(
    session: AsyncSession,
    settings: Settings,
    workflow: Workflow,
    source: Run,
    from_step_index: int,
    *,
    started_by: str | None,
    source_steps: Sequence[RunStep] | None = None,
) -> tuple[Run, StepJob]:
    """A new run that copies ``source``'s steps before ``from_step_index`` and its
    conversation up to that step, then runs the rest (docs/engine.md, Reruns and retries).

    Everything happens in the caller's one transaction: the new run, its step rows and the
    copied messages commit together or not at all, and the job for its first step to run is
    handed over after the commit. 409 ``run_active`` while a run of the workflow is active
    (the source included: only an ended run can be rerun); 422 ``step_not_rerunnable`` for a
    step out of range or after one the source did not complete.
    """
    if source.status in ACTIVE_RUN_STATUSES:
        raise _run_active()
    _check_runnable(workflow)
    steps = (
        source_steps
        if source_steps is not None
        else await repository.list_steps(session, source.id)
    )
    if not 0 <= from_step_index < rerunnable_steps(source, [step.status for step in steps]):
        raise Unprocessable(
            f"Run {source.run_number} cannot be rerun from step {from_step_index + 1}: a rerun "
            "starts at a step whose earlier steps all completed.",
            code=ErrorCode.STEP_NOT_RERUNNABLE,
            details=[{"field": "fromStepIndex", "message": "not a step this run can rerun from"}],
        )
    cut = await conversation.step_start(
        session, source.conversation_id, from_step_index, source.step_count
    )
    run = await _new_run(
        session,
        settings,
        workflow,
        trigger=RunTrigger.MANUAL,
        started_by=started_by,
        plan_revision=source.plan_revision,
        step_count=source.step_count,
        rerun_of=source,
        from_step_index=from_step_index,
    )
    await conversation.copy(session, source.conversation_id, run.conversation_id, before=cut)
    rows = []
    for step in steps:
        copied = step.step_index < from_step_index
        # A copied step keeps what the source produced (its tokens were spent by the source
        # run); the others start afresh. Every row has the same keys: one executemany.
        rows.append(
            {
                "run_id": run.id,
                **step_fields(step),
                "status": StepStatus.COMPLETED if copied else StepStatus.PENDING,
                "attempt": step.attempt if copied else 1,
                "output": step.output if copied else None,
                "output_data": step.output_data if copied else None,
                "warnings": step.warnings if copied else None,
                "feedback": step.feedback if copied else None,
                "started_at": step.started_at if copied else None,
                "finished_at": step.finished_at if copied else None,
            }
        )
    await session.execute(insert(RunStep), rows)
    job = StepJob(run.id, from_step_index, 1)
    defer(session, job)
    return run, job


async def end_unfinished_steps(session: AsyncSession, run: Run) -> None:
    """When a run ends, every step it did not finish becomes skipped; pending outputs die."""
    for step in await repository.list_steps(session, run.id):
        if step.status in (StepStatus.PENDING, StepStatus.RUNNING, StepStatus.AWAITING_APPROVAL):
            transition_step(step, StepStatus.SKIPPED)
            step.claim_token = None
            step.claimed_until = None
    await session.execute(
        update(Asset)
        .where(Asset.run_id == run.id, Asset.status == AssetStatus.PENDING)
        .values(status=AssetStatus.DISCARDED)
    )


async def stop_run(session: AsyncSession, run_id: int, actor: Actor) -> Run:
    """Stop an active run: failed, "Stopped by user". A step in flight is abandoned: its lease
    is cleared, so its late result is refused; open approval links find the run ended."""
    run = await repository.lock_run(session, run_id)
    assert run is not None
    if run.status not in ACTIVE_RUN_STATUSES:
        raise Conflict(f"This run has already ended ({run.status}).", code=ErrorCode.RUN_ENDED)
    step = await repository.get_step(session, run.id, run.current_step_index)
    step_number = run.current_step_index + 1
    transition_run(run, RunStatus.FAILED)
    run.failure_reason = STOPPED_BY_USER
    await end_unfinished_steps(session, run)
    record(
        session,
        actor,
        team_id=run.team_id,
        action="run.stop",
        object_type="run",
        object_id=str(run.id),
        workflow_id=run.workflow_id,
        detail=f"Run {run.run_number} stopped at step {step_number} of {run.step_count}.",
    )
    await session.flush()
    with log_context(
        workflow=run.workflow_id,
        run=run.id,
        step=run.current_step_index,
        attempt_number=step.attempt if step else None,
    ):
        logger.info("run stopped by a user")
    return run


async def check_decidable(
    session: AsyncSession, run: Run, step_index: int, attempt: int
) -> RunStep:
    """The step awaiting this decision, or the reason (409) why it can no longer be taken."""
    if await repository.decision_exists(session, f"step:{run.id}:{step_index}:{attempt}"):
        raise Conflict("This step was already decided.", code=ErrorCode.ALREADY_DECIDED)
    if run.status in (RunStatus.COMPLETED, RunStatus.FAILED):
        if run.failure_reason == STOPPED_BY_USER:
            raise Conflict(
                "This run was stopped; there is nothing to decide.", code=ErrorCode.RUN_STOPPED
            )
        raise Conflict(f"This run has ended ({run.status}).", code=ErrorCode.RUN_ENDED)
    step = await repository.get_step(session, run.id, run.current_step_index)
    if step is None or step.step_index != step_index or step.attempt != attempt:
        raise Conflict(
            "This decision is for an earlier version of this step, which was redone since: "
            "decide on the newest one (its email, or the run's page).",
            code=ErrorCode.STALE_ATTEMPT,
        )
    if run.status != RunStatus.AWAITING_APPROVAL or step.status != StepStatus.AWAITING_APPROVAL:
        raise Conflict("This step is not waiting for a decision.", code=ErrorCode.NOT_AWAITING)
    return step


async def decide(
    session: AsyncSession,
    settings: Settings,
    *,
    run_id: int,
    step_index: int,
    attempt: int,
    action: str,
    note: str | None,
    actor: Actor,
    token_id: str | None = None,
    edited_text: str | None = None,
) -> Decision:
    """Record a person's decision on a paused step. Of concurrent decisions, one wins.

    Approve keeps the pending output exactly (no model call) and moves on — or, with
    ``edited_text``, the approver's edit of it (:func:`_keep_edit`); reject discards it, puts
    the feedback in the conversation and queues the same step as a new attempt.
    """
    run = await repository.lock_run(session, run_id)
    assert run is not None
    step = await check_decidable(session, run, step_index, attempt)
    if edited_text is not None:
        check_edit(step, action, edited_text)
    asset = await repository.pending_asset(session, run.id, step_index, attempt)
    session.add(
        LinkDecision(
            team_id=run.team_id,
            workflow_id=run.workflow_id,
            subject=f"step:{run.id}:{step_index}:{attempt}",
            kind="step_approval",
            action=action,
            note=note,
            token_id=token_id,
            decided_by=actor.user_id,
            via=actor.channel.value,
        )
    )
    # The run has waited since it paused at this step (its last update); measured before the
    # decision moves it on.
    waited = (utc_now() - run.updated_at).total_seconds()
    detail = f"Run {run.run_number}, step {step_index + 1}, attempt {attempt}."
    if action == "reject" and note and note.strip():
        detail += f" Feedback: {note.strip()}"
    if token_id is not None:
        detail += f" Link {token_id}."
    record(
        session,
        actor,
        team_id=run.team_id,
        action=f"step.{action}",
        object_type="step",
        object_id=f"{run.id}:{step_index}",
        workflow_id=run.workflow_id,
        detail=detail,
    )
    transition_run(run, RunStatus.APPROVED)
    job: StepJob | None
    if action == "approve":
        transition_step(step, StepStatus.COMPLETED)
        if asset is not None:
            asset.status = AssetStatus.FINAL
        if edited_text is not None and edited_text != step.output:
            _keep_edit(step, asset, edited_text)
            approval = conversation.edited_message(edited_text)
        else:
            approval = conversation.APPROVED_MESSAGE
        await conversation.append_user_text(session, run.conversation_id, approval)
        if step_index + 1 >= run.step_count:
            transition_run(run, RunStatus.COMPLETED)
            await emails.run_completed(session, settings, run)
            job = None
        else:
            run.current_step_index = step_index + 1
            job = StepJob(run.id, step_index + 1, 1)
    else:
        if asset is not None:
            asset.status = AssetStatus.DISCARDED
        await conversation.append_user_text(
            session, run.conversation_id, conversation.rejected_message(note)
        )
        transition_step(step, StepStatus.PENDING)
        # Kept so the next attempt's output can be shown as a diff from this one.
        step.previous_output = step.output
        step.attempt += 1
        # A step's times are its current attempt's: the hours it waited for review are not
        # part of how long it took.
        step.started_at = None
        step.feedback = (note or "").strip() or None
        step.retries = 0
        step.takeovers = 0
        step.next_attempt_at = None
        job = StepJob(run.id, step_index, step.attempt)
    if job is not None:
        defer(session, job)
    await session.flush()
    APPROVAL_DECISION.labels(action).observe(max(waited, 0.0))
    with log_context(workflow=run.workflow_id, run=run.id, step=step_index, attempt_number=attempt):
        logger.info("step %s decided: %s (via %s)", step_index, action, actor.channel.value)
    return Decision(
        run=run,
        action=action,
        job=job,
        step_index=step_index,
        edited=step.model_output is not None and action == "approve",
    )


def check_edit(step: RunStep, action: str, edited_text: str) -> None:
    """Why an approver's edit of this step's output cannot be kept (422), if it cannot."""
    if action != "approve":
        raise Unprocessable(
            "An edited text goes with Approve; to ask for a new version, request changes.",
            code=ErrorCode.EDIT_NOT_ALLOWED,
        )
    if step.tool_name not in EDITABLE_TOOLS:
        raise Unprocessable(
            "Only a post's text or an image's caption can be edited before approving; "
            "request changes for anything else.",
            code=ErrorCode.EDIT_NOT_ALLOWED,
        )
    if not edited_text.strip():
        raise Unprocessable("The edited text is empty.", code=ErrorCode.EDIT_NOT_ALLOWED)
    platform = (step.output_data or {}).get("platform")
    limit = PLATFORM_LIMITS.get(platform) if isinstance(platform, str) else None
    if step.tool_name == "format_post" and limit is not None and len(edited_text) > limit:
        raise Unprocessable(
            f"A {platform} post may have at most {limit} characters; the edit has "
            f"{len(edited_text)}.",
            code=ErrorCode.EDIT_NOT_ALLOWED,
        )


def _keep_edit(step: RunStep, asset: Asset | None, edited_text: str) -> None:
    """The approver's edit becomes the step's output, byte for byte (what later steps, the
    assets API and the dashboard use); the model's version stays in ``model_output`` for the
    diff. A post's edit is its whole text (hashtags included); an image's is its caption (the
    image itself was drawn from the prompt and is not redrawn: to change it, request changes)."""
    step.model_output = step.output
    step.output = edited_text
    field = "altText" if step.tool_name == "generate_image" else "text"
    data = {**(step.output_data or {}), field: edited_text, "editedByApprover": True}
    if step.tool_name == "format_post":
        data["hashtags"] = []  # the edit is the whole post, hashtags included
    step.output_data = data
    if asset is not None:
        asset.content = edited_text
        asset.data = {key: value for key, value in data.items() if key != "assetId"}


async def get_visible(
    session: AsyncSession, auth: AuthContext, workflow_id: str, run_id: int, minimum: Role
) -> Run:
    """A run of a workflow in one of the user's teams, with the role check; another team's is
    a 404, like a missing one."""
    run = await repository.get_run_in_teams(session, workflow_id, run_id, auth.team_ids)
    if run is None:
        raise NotFound("No run with this id in this workflow.", code=ErrorCode.RUN_NOT_FOUND)
    auth.require_role(run.team_id, minimum)
    return run


async def workflow_of(session: AsyncSession, run: Run) -> Workflow:
    """The run's workflow, with its steps (for the checks a new run makes)."""
    workflow = await session.scalar(
        select(Workflow).where(Workflow.id == run.workflow_id).options(selectinload(Workflow.steps))
    )
    assert workflow is not None
    return workflow


async def decide_signed_in(
    session: AsyncSession, settings: Settings, run: Run, body: DecisionRequest, actor: Actor
) -> Decision:
    """A signed-in admin's decision (API or dashboard) on the step the run waits at now (or
    on the attempt the body names, refused if the step has moved on)."""
    step = await repository.get_step(session, run.id, run.current_step_index)
    attempt = body.attempt if body.attempt is not None else (step.attempt if step else 0)
    return await decide(
        session,
        settings,
        run_id=run.id,
        step_index=run.current_step_index,
        attempt=attempt,
        action=body.action,
        note=body.note,
        actor=actor,
        edited_text=body.edited_text,
    )


def run_summary(settings: Settings, run: Run) -> RunSummary:
    """A run as lists show it, with what its tokens cost (None when the model's price is not
    known)."""
    return RunSummary.model_validate(run).model_copy(
        update={
            "estimated_cost_usd": estimated_cost_usd(
                settings, run.model_name, run.input_tokens, run.output_tokens
            )
        }
    )


def _acted_by(event: AuditEvent | None) -> ActedBy | None:
    if event is None:
        return None
    return ActedBy(
        actor=event.actor,
        user_id=event.actor_user_id,
        channel=event.channel,
        action=event.action,
        at=event.at,
    )


async def detail(session: AsyncSession, settings: Settings, run: Run) -> RunDetail:
    """The run with its step rows and its conversation, as the API shows it; who decided each
    step and who stopped the run come from the audit trail."""
    steps = await repository.list_steps(session, run.id)
    rows = await conversation.load_rows(session, run.conversation_id)
    decided, stopped = await audit_repository.run_events(session, run.team_id, run.id)
    return RunDetail(
        **run_summary(settings, run).model_dump(),
        workflow_id=run.workflow_id,
        stopped_by=_acted_by(stopped),
        steps=[
            RunStepOut.model_validate(step).model_copy(
                update={
                    "estimated_cost_usd": estimated_cost_usd(
                        settings, run.model_name, step.input_tokens, step.output_tokens
                    ),
                    "decided_by": _acted_by(decided.get(step.step_index)),
                }
            )
            for step in steps
        ],
        messages=conversation.public_messages(rows),
    )


async def resend_step_email(
    session: AsyncSession, settings: Settings, run: Run
) -> EmailSentResponse:
    """Fresh Approve / Request changes links for the step a run waits at (the old expired)."""
    step = await repository.get_step(session, run.id, run.current_step_index)
    if run.status != RunStatus.AWAITING_APPROVAL or step is None:
        raise Conflict("This run is not waiting for approval.", code=ErrorCode.NOT_AWAITING)
    emailed = await emails.step_awaiting_approval(session, settings, run, step)
    return EmailSentResponse(
        message=f"Fresh approval links went to {', '.join(emailed)}."
        if emailed
        else "No owner could be emailed; decide from the dashboard.",
        emailed_to=emailed,
    )
