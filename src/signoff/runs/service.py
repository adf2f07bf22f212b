"""Run rules: start, stop, decide. Services never commit; they return the jobs to enqueue
after the caller's commit (a crash in between is repaired by the sweep)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import insert, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from signoff.audit import repository as audit_repository
from signoff.audit.schemas import ActedBy
from signoff.audit.service import Actor, record
from signoff.auth.service import AuthContext
from signoff.budgets import service as budgets
from signoff.config import Settings
from signoff.errors import Conflict, ErrorCode, NotFound, Unprocessable
from signoff.kit.schemas import EmailSentResponse
from signoff.llm.pricing import estimated_cost_usd
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

STOPPED_BY_USER = "Stopped by user"


@dataclass(frozen=True)
class Decision:
    """What a recorded decision did, and the job it queued (None when the run completed)."""

    run: Run
    action: str
    job: StepJob | None


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
    if workflow.status != WorkflowStatus.ACTIVE:
        raise Unprocessable(
            f"Only an active workflow can run; this one is {workflow.status}.",
            code=ErrorCode.WORKFLOW_NOT_ACTIVE,
        )
    if not workflow.steps:
        raise Unprocessable("This workflow has no steps.", code=ErrorCode.NO_STEPS)
    await budgets.check_run_start(session, settings, workflow.team_id, trigger)
    # Numbering under the workflow's row lock: runs are 1, 2, 3, … with no gaps.
    run_number = await session.scalar(
        update(Workflow)
        .where(Workflow.id == workflow.id)
        .values(run_count=Workflow.run_count + 1)
        .returning(Workflow.run_count)
    )
    assert run_number is not None
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
        plan_revision=workflow.plan_revision,
        step_count=len(workflow.steps),
        started_by=started_by,
        model_name=settings.llm_model.strip(),
    )
    session.add(run)
    try:
        await session.flush()
    except IntegrityError:
        raise Conflict(
            "A run of this workflow is already active; wait for it or stop it.",
            code=ErrorCode.RUN_ACTIVE,
        ) from None
    # One executemany (the ORM would insert row by row to read each id back; nobody needs them).
    await session.execute(
        insert(RunStep), [{"run_id": run.id, **step_fields(step)} for step in workflow.steps]
    )
    job = StepJob(run.id, 0, 1)
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
            "This link is for an earlier version of this step; use the newest email.",
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
) -> Decision:
    """Record a person's decision on a paused step. Of concurrent decisions, one wins.

    Approve keeps the pending output exactly (no model call) and moves on; reject discards it,
    puts the feedback in the conversation and queues the same step as a new attempt.
    """
    run = await repository.lock_run(session, run_id)
    assert run is not None
    step = await check_decidable(session, run, step_index, attempt)
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
        await conversation.append_user_text(
            session, run.conversation_id, conversation.APPROVED_MESSAGE
        )
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
    return Decision(run=run, action=action, job=job)


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


async def decide_signed_in(
    session: AsyncSession, settings: Settings, run: Run, body: DecisionRequest, actor: Actor
) -> Decision:
    """A signed-in admin's decision (API or dashboard) on the step the run waits at now."""
    step = await repository.get_step(session, run.id, run.current_step_index)
    return await decide(
        session,
        settings,
        run_id=run.id,
        step_index=run.current_step_index,
        attempt=step.attempt if step else 0,
        action=body.action,
        note=body.note,
        actor=actor,
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
