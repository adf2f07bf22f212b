"""The step executor: a job starts one step of one run, and its worker chains the run's next
steps while they need nobody.

Three phases per step, and no transaction is ever open across the model call (it would hold
SQLite's write lock, or a PostgreSQL connection, for as long as the model takes):

1. **claim** (write transaction): check the job still names the run's current step and
   attempt (else do nothing: a job delivered twice or late is harmless), take a lease (a fresh
   claim token and an expiry), load the conversation;
2. **execute** (no transaction): one model request with exactly the step's tool as the agent's
   output, the lease renewed in the background; losing the lease (a stop, a takeover) cancels
   the call;
3. **record** (write transaction): only if the claim token is still ours and the run is still
   running, so only the lease holder ever writes a result; then store the messages, usage and
   output, move the run on, write the emails to the outbox.

**The chain.** When a step completes and the next one can start at once, the record also
claims the next step, in the same transaction: a lease like any claim (a crash lets it run
out, the sweep re-queues the step and a takeover follows), and the worker goes straight on with
the conversation it holds — the rows it just wrote, parsed back, so the next step sees exactly
what a reload would give. So a step costs one write transaction and no queue round trip. The
queue carries only the work that starts idle: a run's first step, a retry after its backoff,
the step after a decision, and the sweep's re-queues; those jobs are enqueued after the commit
(a crash in between: the sweep finds the ready step). The chain ends where a run stops needing
a worker — an approval pause, a retry with backoff, a failure, the run's end, a stop, a lost
lease — so a waiting run holds nothing; a chain occupies one worker slot for a whole run.

**Two ways to record a step.** The usual claim and the record of a step that needs no approval
are the hot path: :mod:`signoff.runs.step_store` runs them as direct transactions of guarded
Core statements. Anything else — a decision to pause for approval, a failure or retry, a
takeover, or a direct record whose guards missed (a stop, a lost lease) — goes through the
general path below, on ORM objects in ``db.write()``, which also drops a late result. The
durable unit is the step row and its lease, not the queue job (docs/architecture.md).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from time import perf_counter

from pydantic_ai import UnexpectedModelBehavior
from pydantic_ai.exceptions import ModelAPIError, ModelHTTPError
from pydantic_ai.messages import ModelMessage
from pydantic_ai.models import Model
from sqlalchemy.ext.asyncio import AsyncSession

from signoff.budgets.service import token_budget_problem
from signoff.config import Settings
from signoff.db import Database
from signoff.kit.clock import utc_now
from signoff.kit.ids import new_id
from signoff.kit.logging import log_context
from signoff.llm.models import model_settings
from signoff.metrics.instruments import STEP_DURATION
from signoff.models import Asset, AssetStatus, Run, RunStatus, RunStep, StepStatus
from signoff.queue.jobs import JobQueue, StepJob
from signoff.runs import conversation, emails, repository, step_store
from signoff.runs.agents import step_agent
from signoff.runs.prompts import run_opening, step_text
from signoff.runs.service import end_unfinished_steps
from signoff.runs.states import transition_run, transition_step
from signoff.runs.step_store import ClaimedRun, CompletedStep, NewAsset, Opening, PlannedStep
from signoff.tools.base import ToolContext, ToolResult

logger = logging.getLogger(__name__)

MAX_BACKOFF = timedelta(minutes=5)


@dataclass(frozen=True)
class Claim:
    """A worker's lease on a step, and everything the step needs to run: the message naming it
    (None for a later attempt, whose conversation ends with a person's feedback)."""

    job: StepJob
    token: str
    run: ClaimedRun
    step: PlannedStep
    history: list[ModelMessage]
    prompt: str | None


@dataclass
class Outcome:
    """What the model call gave: a result with its messages and usage, or an error."""

    result: ToolResult | None = None
    messages: list[ModelMessage] = field(default_factory=list)
    input_tokens: int = 0
    output_tokens: int = 0
    requests: int = 0
    error: str | None = None
    retryable: bool = True
    lease_lost: bool = False


@dataclass(frozen=True)
class FollowUp:
    """What to do once a record has committed: the job to queue (and not before when), and
    whether mail was written (the sender is woken only then); or the next step's claim, taken in
    the same transaction, for this worker to go on with (the chain)."""

    job: StepJob | None = None
    not_before: datetime | None = None
    wake_mail: bool = False
    next_claim: Claim | None = None


class StepFailure(Exception):
    """The step did not produce a usable result; ``retryable`` says whether to try again."""

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


class StepExecutor:
    """Executes step jobs. Holds no state per run: everything is in the database."""

    def __init__(
        self,
        *,
        db: Database,
        settings: Settings,
        model: Model,
        queue: JobQueue,
        wake_mail: Callable[[], None] = lambda: None,
    ) -> None:
        self.db = db
        self.settings = settings
        self.model = model
        self.queue = queue
        self.wake_mail = wake_mail
        self._completion_mails = partial(emails.run_completed_mails, settings)

    # -- entry points -------------------------------------------------------------------------

    async def execute(self, job: StepJob) -> None:
        """Run the job's step if the job still names the current work, else do nothing; then
        the run's next steps, as long as each can start at once (the chain)."""
        claim = await self._claim(job)
        while claim is not None:
            started = perf_counter()
            # Every line logged while the step runs, ours or a library's, names it (kit.logging).
            with log_context(
                workflow=claim.run.workflow_id,
                run=claim.job.run_id,
                step=claim.job.step_index,
                attempt_number=claim.job.attempt,
            ):
                logger.debug("step %s (%s) claimed", claim.job.step_index, claim.step.tool_name)
                follow_up = await self._execute_and_record(claim)
            STEP_DURATION.labels(claim.step.tool_name).observe(perf_counter() - started)
            if follow_up.wake_mail:
                self.wake_mail()
            if follow_up.job is not None:
                await self.queue.enqueue(follow_up.job, not_before=follow_up.not_before)
            claim = follow_up.next_claim

    async def _execute_and_record(self, claim: Claim) -> FollowUp:
        outcome = await self._over_budget(claim) or await self._execute(claim)
        try:
            return await self._record(claim, outcome)
        except Exception as exc:
            # Recording failed (a database error, a bug): the worker is alive, so the step
            # must not wait for its lease to run out and be taken over as if it had crashed
            # (which asks the model again later, with the reason lost). The rolled-back
            # result becomes a failed attempt with its real error, retried like any other.
            logger.exception("recording the result of %s failed", claim.job.key)
            failure = Outcome(error=f"Recording the result failed: {type(exc).__name__}: {exc}")
            return await self._record(claim, failure)

    async def sweep(self) -> int:
        """Queue every step that is ready but perhaps not queued: after a crash between commit
        and enqueue, a retry whose delay passed, or a lease that ran out. Double enqueues are
        harmless."""
        async with self.db.read() as session:
            jobs = await repository.ready_jobs(session, utc_now())
        for job in jobs:
            await self.queue.enqueue(job)
        return len(jobs)

    def _lease(self) -> timedelta:
        return timedelta(seconds=self.settings.step_lease_seconds)

    # -- phase 1: claim -----------------------------------------------------------------------

    async def _claim(self, job: StepJob) -> Claim | None:
        """The lease on the job's step, or None when the job names nothing to do now. The
        usual claim (a pending step) is the fast path; a step that is already running (a lease
        held, or one that ran out: a takeover) goes to the general path."""
        pending = await step_store.claim_pending(self.db, job, self._lease())
        if pending == "running":
            return await self._claim_running(job)
        if pending is None:
            return None
        history = conversation.parse(pending.history) if pending.history else []
        return _claim_for(job, pending.token, pending.run, pending.step, history, pending.opening)

    async def _claim_running(self, job: StepJob) -> Claim | None:
        """The job's step is running: nothing to do while its lease holds; once it has run
        out, its worker crashed, and the step is taken over (a bounded number of times; the
        attempt stays the same)."""
        wake_mail = False
        async with self.db.write() as session:
            found = await repository.lock_run_at_step(session, job.run_id, job.step_index)
            if found is None:
                return None
            run, step = found
            if (
                run.status not in (RunStatus.RUNNING, RunStatus.APPROVED)
                or run.current_step_index != job.step_index
                or step.attempt != job.attempt
                or step.status != StepStatus.RUNNING
            ):
                return None  # changed since the fast claim looked
            now = utc_now()
            if step.claimed_until is not None and step.claimed_until > now:
                return None  # another worker holds the lease
            step.takeovers += 1
            with log_context(
                workflow=run.workflow_id,
                run=run.id,
                step=job.step_index,
                attempt_number=job.attempt,
            ):
                logger.warning("step %s: its worker's lease ran out; taking it over", job.key)
            transition_step(step, StepStatus.PENDING)
            claim: Claim | None = None
            if step.takeovers > self.settings.step_max_takeovers:
                await self._fail_run(
                    session, run, step, "the worker executing it crashed too many times"
                )
                wake_mail = True
            else:
                history = await conversation.load(session, run.conversation_id)
                claim = await self._take_lease(session, run, step, job, now, history)
        if wake_mail:
            self.wake_mail()
        return claim

    async def _take_lease(
        self,
        session: AsyncSession,
        run: Run,
        step: RunStep,
        job: StepJob,
        now: datetime,
        history: list[ModelMessage],
    ) -> Claim:
        if run.status == RunStatus.APPROVED:
            transition_run(run, RunStatus.RUNNING)
        transition_step(step, StepStatus.RUNNING)
        step.claim_token = new_id()
        step.claimed_until = now + self._lease()
        step.started_at = step.started_at or now
        opening = None
        if step.step_index == 0 and step.attempt == 1:
            opening = await step_store.load_opening(session, run.workflow_id)
        # No flush: the commit writes the lease in the same round trip.
        claimed = ClaimedRun(run.team_id, run.workflow_id, run.conversation_id, run.step_count)
        planned = PlannedStep(
            step.description,
            step.tool_name,
            step.tool_input,
            step.requires_approval,
            step.approval_prompt,
        )
        return _claim_for(job, step.claim_token, claimed, planned, history, opening)

    # -- phase 2: execute ---------------------------------------------------------------------

    async def _over_budget(self, claim: Claim) -> Outcome | None:
        """A failure that ends the run, instead of the model call, when the team's token budget
        for the day is used up (budgets.service). It is recorded like any failure, under the
        step's lease, so a stop or a takeover meanwhile wins as usual; nothing completed is
        touched, and a crash before the record lets the lease run out and the check run again.
        """
        if self.settings.team_tokens_per_day == 0:
            return None
        async with self.db.read() as session:
            problem = await token_budget_problem(session, self.settings, claim.run.team_id)
        if problem is None:
            return None
        return Outcome(
            error=f"{problem}. Nothing was sent to the model; start the run again then, or "
            "ask for a higher budget.",
            retryable=False,
        )

    async def _execute(self, claim: Claim) -> Outcome:
        work = asyncio.create_task(self._call_model(claim))
        lease_lost = False
        interval = self.settings.step_lease_seconds / 3
        try:
            while not work.done():
                done, _ = await asyncio.wait({work}, timeout=interval)
                if done:
                    break
                until = utc_now() + self._lease()
                if not await step_store.renew_lease(self.db, claim.job, claim.token, until):
                    lease_lost = True
                    work.cancel()
                    break
        except asyncio.CancelledError:
            # The job itself was cancelled (shutdown, a procrastinate abort): the model call
            # must not go on unobserved, spending tokens for a result nobody records.
            work.cancel()
            raise
        if lease_lost:
            try:
                await work
            except asyncio.CancelledError:
                pass
            except Exception:  # the result is dropped either way
                logger.debug("error after the lease was lost", exc_info=True)
            return Outcome(lease_lost=True)
        return work.result()

    async def _call_model(self, claim: Claim) -> Outcome:
        deps = ToolContext(
            settings=self.settings,
            db=self.db,
            team_id=claim.run.team_id,
            workflow_id=claim.run.workflow_id,
            run_id=claim.job.run_id,
            step_index=claim.job.step_index,
            attempt=claim.job.attempt,
        )
        try:
            result = await step_agent(claim.step.tool_name).run(
                claim.prompt,
                message_history=claim.history or None,
                model=self.model,
                deps=deps,
                model_settings=model_settings(self.settings),
            )
            tool_result = result.output
            if tool_result.failed:
                raise StepFailure(tool_result.text)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # every failure becomes a step outcome
            failure = _classify(exc)
            return Outcome(error=str(failure), retryable=failure.retryable)
        usage = result.usage
        return Outcome(
            result=tool_result,
            messages=result.new_messages(output_tool_return_content=tool_result.text),
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            requests=usage.requests,
        )

    # -- phase 3: record ----------------------------------------------------------------------

    async def _record(self, claim: Claim, outcome: Outcome) -> FollowUp:
        if outcome.lease_lost:
            logger.info("step %s abandoned: its lease was taken", claim.job.key)
            return FollowUp()
        if outcome.result is not None and not claim.step.requires_approval:
            recorded = await self._record_completed(claim, outcome.result, outcome)
            if recorded is not None:
                return recorded
        async with self.db.write() as session:
            found = await repository.lock_run_with_steps(
                session, claim.job.run_id, claim.job.step_index
            )
            if found is None:
                return FollowUp()
            run, step, next_step = found
            if (
                run.status != RunStatus.RUNNING
                or step.status != StepStatus.RUNNING
                or step.claim_token != claim.token
            ):
                # Stopped, or taken over by another worker: only the lease holder writes.
                logger.info("late result of %s dropped", claim.job.key)
                return FollowUp()
            step.claim_token = None
            step.claimed_until = None
            if outcome.result is None:
                return await self._after_failure(session, run, step, outcome)
            return await self._after_success(session, claim, run, step, next_step, outcome)

    async def _record_completed(
        self, claim: Claim, result: ToolResult, outcome: Outcome
    ) -> FollowUp | None:
        """The fast path: a step that needs no approval completed, so record it and either
        claim the next step (the chain) or, after the last, complete the run and write its
        email. None when the rows are not as expected (stopped, taken over, …): then nothing
        was written, and the general path decides."""
        job = claim.job
        completed = self._completed_step(claim, result, outcome)
        recorded = await step_store.record_completed(self.db, completed, self._completion_mails)
        if recorded is None:
            return None
        if recorded == "run completed":
            logger.info("run completed")
            return FollowUp(wake_mail=True)  # and its email is in the outbox
        logger.debug("step %s (%s) completed", job.step_index, claim.step.tool_name)
        # Go on with the history as a reload would give it: the stored rows parsed back.
        history = claim.history
        if completed.rows:
            history = [*history, *conversation.parse(completed.rows)]
        next_job = StepJob(job.run_id, job.step_index + 1, 1)
        next_claim = _claim_for(next_job, completed.next_token, claim.run, recorded, history, None)
        return FollowUp(next_claim=next_claim)

    def _completed_step(self, claim: Claim, result: ToolResult, outcome: Outcome) -> CompletedStep:
        """What the fast record writes, prepared before its transaction (which on SQLite holds
        the write lock)."""
        job = claim.job
        output_data = result.data or None
        asset = None
        if result.asset_type is not None:
            asset = NewAsset(
                id=new_id(),
                team_id=claim.run.team_id,
                workflow_id=claim.run.workflow_id,
                run_id=job.run_id,
                step_index=job.step_index,
                attempt=job.attempt,
                type=result.asset_type,
                status=AssetStatus.FINAL,
                content=result.content,
                data=result.data,
                mime_type=result.mime_type,
                blob=result.blob,
                created_at=utc_now(),
            )
            output_data = {**(result.data or {}), "assetId": asset.id}
        return CompletedStep(
            job=job,
            claim_token=claim.token,
            last=job.step_index + 1 == claim.run.step_count,
            output=result.content or result.text,
            output_data=output_data,
            warnings=[warning.as_json() for warning in result.warnings] or None,
            input_tokens=outcome.input_tokens,
            output_tokens=outcome.output_tokens,
            requests=outcome.requests,
            conversation_id=claim.run.conversation_id,
            # The history was loaded under this lease and nobody else appends while it is
            # held, so its length is where the new messages go.
            position=len(claim.history),
            rows=conversation.dump(outcome.messages),
            asset=asset,
            next_token=new_id(),
            lease=self._lease(),
        )

    async def _after_success(
        self,
        session: AsyncSession,
        claim: Claim,
        run: Run,
        step: RunStep,
        next_step: RunStep | None,
        outcome: Outcome,
    ) -> FollowUp:
        assert outcome.result is not None
        result = outcome.result
        # The history was loaded under this lease and nobody else appends while it is held, so
        # its length is where the new messages go (no max() query). No autoflush: the step's
        # changes are written once, at the commit, not once here and again there.
        with session.no_autoflush:
            stored = await conversation.append(
                session, run.conversation_id, outcome.messages, position=len(claim.history)
            )
        for holder in (step, run):
            holder.input_tokens += outcome.input_tokens
            holder.output_tokens += outcome.output_tokens
        run.model_requests += outcome.requests
        step.output = result.content or result.text
        step.output_data = result.data or None
        step.warnings = [warning.as_json() for warning in result.warnings] or None
        step.error = None
        if result.asset_type is not None:
            asset = Asset(
                id=new_id(),  # known now, so the step can point at it without a flush
                team_id=run.team_id,
                workflow_id=run.workflow_id,
                run_id=run.id,
                step_index=step.step_index,
                attempt=step.attempt,
                type=result.asset_type,
                status=AssetStatus.PENDING if step.requires_approval else AssetStatus.FINAL,
                content=result.content,
                data=result.data,
                mime_type=result.mime_type,
                blob=result.blob,
            )
            session.add(asset)
            step.output_data = {**(result.data or {}), "assetId": asset.id}
        if step.requires_approval:
            transition_step(step, StepStatus.AWAITING_APPROVAL)
            transition_run(run, RunStatus.AWAITING_APPROVAL)
            await emails.step_awaiting_approval(session, self.settings, run, step)
            logger.info("step %s (%s) awaits approval", step.step_index, step.tool_name)
            return FollowUp(wake_mail=True)
        transition_step(step, StepStatus.COMPLETED)
        logger.debug("step %s (%s) completed", step.step_index, step.tool_name)
        if step.step_index + 1 >= run.step_count:
            transition_run(run, RunStatus.COMPLETED)
            await emails.run_completed(session, self.settings, run)
            logger.info("run completed")
            return FollowUp(wake_mail=True)
        transition_run(run, RunStatus.RUNNING)
        run.current_step_index = step.step_index + 1
        job = StepJob(run.id, step.step_index + 1, 1)
        if next_step is None or next_step.status != StepStatus.PENDING or next_step.attempt != 1:
            return FollowUp(job=job)  # not expected; the queue's checks decide
        # The chain: claim the next step now, in this transaction, and go on with the history
        # as a reload would give it (the stored rows parsed back, not the objects in memory).
        history = [*claim.history, *conversation.parse(stored)] if stored else claim.history
        next_claim = await self._take_lease(session, run, next_step, job, utc_now(), history)
        return FollowUp(next_claim=next_claim)

    async def _after_failure(
        self, session: AsyncSession, run: Run, step: RunStep, outcome: Outcome
    ) -> FollowUp:
        error = outcome.error or "unknown error"
        step.error = error
        if outcome.retryable and step.retries < self.settings.step_max_retries:
            step.retries += 1
            delay = timedelta(
                seconds=self.settings.step_retry_base_seconds * 2 ** (step.retries - 1)
            )
            step.next_attempt_at = utc_now() + min(delay, MAX_BACKOFF)
            transition_step(step, StepStatus.PENDING)
            logger.warning(
                "step %s (%s) failed, retry %d of %d at %s: %s",
                step.step_index,
                step.tool_name,
                step.retries,
                self.settings.step_max_retries,
                step.next_attempt_at.isoformat(),
                error,
            )
            return FollowUp(
                job=StepJob(run.id, step.step_index, step.attempt), not_before=step.next_attempt_at
            )
        await self._fail_run(session, run, step, error)
        return FollowUp(wake_mail=True)

    async def _fail_run(self, session: AsyncSession, run: Run, step: RunStep, error: str) -> None:
        transition_step(step, StepStatus.FAILED)
        step.error = error
        step.claim_token = None
        step.claimed_until = None
        transition_run(run, RunStatus.FAILED)
        run.failure_reason = f"Step {step.step_index + 1} ({step.tool_name}) failed: {error}"
        run.failed_step_index = step.step_index
        await end_unfinished_steps(session, run)
        await emails.run_failed(session, self.settings, run, step)
        # Also reached outside a step's context (a takeover too many): name the run here.
        with log_context(
            workflow=run.workflow_id, run=run.id, step=step.step_index, attempt_number=step.attempt
        ):
            logger.warning("run failed: %s", run.failure_reason)


def _claim_for(
    job: StepJob,
    token: str,
    run: ClaimedRun,
    step: PlannedStep,
    history: list[ModelMessage],
    opening: Opening | None,
) -> Claim:
    """The claim on ``job``'s step under lease ``token``. A first attempt is told the step (a
    run's first step after its opening); a later one gets no message: the conversation ends
    with the feedback."""
    prompt = None
    if job.attempt == 1:
        prompt = step_text(
            step_index=job.step_index,
            step_count=run.step_count,
            description=step.description,
            tool_name=step.tool_name,
            tool_input=step.tool_input,
            approval_prompt=step.approval_prompt,
        )
        if opening is not None:
            context = run_opening(
                team_name=opening.team_name,
                title=opening.title,
                goal=opening.goal,
                core_memory=opening.core_memory,
            )
            prompt = f"{context}\n\n{prompt}"
    return Claim(job=job, token=token, run=run, step=step, history=history, prompt=prompt)


def _classify(exc: BaseException) -> StepFailure:
    if isinstance(exc, StepFailure):
        return exc
    if isinstance(exc, ModelHTTPError):
        transient = exc.status_code == 429 or exc.status_code >= 500 or exc.status_code == 408
        return StepFailure(
            f"The model provider answered HTTP {exc.status_code}.", retryable=transient
        )
    if isinstance(exc, ModelAPIError):  # timeouts, connection errors, overload
        return StepFailure(f"The model provider failed: {exc}")
    if isinstance(exc, UnexpectedModelBehavior):
        return StepFailure(f"The model did not complete the step: {exc.message}")
    logger.exception("unexpected error in a step", exc_info=exc)
    return StepFailure(f"Unexpected error: {type(exc).__name__}: {exc}")
