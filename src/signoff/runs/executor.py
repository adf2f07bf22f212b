"""The step executor: a job starts one step of one run, and its worker chains the run's next
steps while they need nobody.

Three phases per step, never a transaction across the model call (ENGINE.md invariant 3):

1. **claim** (write transaction): check the job still names the run's current step and
   attempt (else do nothing — invariant 2), take a lease (a fresh claim token and an expiry),
   load the conversation;
2. **execute** (no transaction): one model request with exactly the step's tool as the agent's
   output, the lease renewed in the background; losing the lease (a stop, a takeover) cancels
   the call;
3. **record** (write transaction): only if the claim token is still ours and the run is still
   running — then store the messages, usage and output, move the run on, write the emails to
   the outbox.

**The chain.** When a step completes and the next one can start at once, the record phase also
claims the next step, in the same transaction: the same lease as any claim (a token and an
expiry; a crash lets it run out, the sweep re-queues the step and a takeover follows, counted
like any other), and the worker goes straight on with the conversation it holds — the rows it
just wrote, parsed back, so the next step sees exactly what a reload would give (invariant 10).
So a step costs one write transaction and no queue round trip. After the last step, the same
transaction completes the run and writes its email.

**Direct transactions.** The usual claim and these records are the hot path, so they are
functions of Core statements built once, run by :meth:`signoff.db.Database.write_direct` on a
synchronous connection in a thread: one hand-off per transaction rather than per statement.
A record's statements carry their own guards (the run running, the step still under this lease,
the next one pending, the run's row locked first), with the status changes still checked by
:mod:`signoff.runs.states`; a guard that misses rolls the transaction back, and anything
unexpected (a stop, a takeover, an approval, a failure) goes through the general ORM path, which
drops a late result as before. On PostgreSQL the chain's record is a single statement
(:func:`_chain_record`), whose writes depend on each other so that it applies all or nothing
without a transaction. The queue carries only the work that starts idle: a run's first
step, a retry after its backoff, the step after a decision, and the sweep's re-queues; those
jobs are enqueued after the commit (a crash in between: the sweep finds the ready step —
invariant 4). The chain ends where a run stops needing a worker: an approval pause, a retry
with backoff, a failure, the run's end, a stop, a lost lease — so a waiting run still holds
nothing (invariant 8).

The durable unit is the step row and its lease, not the queue job: "one job per step" means one
claim per step attempt; a queue job is only how idle work is picked up. A chain occupies one of
the worker's concurrency slots for a whole run (until it pauses or ends); with a model of a few
seconds per call that is what a slot would be doing anyway, and runs waiting behind it start as
slots free up.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any, Literal, cast

from pydantic_ai import UnexpectedModelBehavior
from pydantic_ai.exceptions import ModelAPIError, ModelHTTPError
from pydantic_ai.messages import ModelMessage
from pydantic_ai.models import Model
from sqlalchemy import (
    JSON,
    BindParameter,
    Cast,
    Connection,
    Integer,
    Row,
    Select,
    Table,
    Text,
    and_,
    bindparam,
    exists,
    func,
    insert,
    select,
    update,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.ext.asyncio import AsyncSession

from signoff.config import Settings
from signoff.db import Database
from signoff.kit.clock import utc_now
from signoff.kit.ids import new_id
from signoff.llm.models import model_settings
from signoff.models import (
    Asset,
    AssetStatus,
    ConversationMessage,
    MemoryEntry,
    Run,
    RunStatus,
    RunStep,
    StepStatus,
    Team,
    Workflow,
)
from signoff.models.memory import CORE_KEY
from signoff.queue.jobs import JobQueue, StepJob
from signoff.runs import conversation, emails, repository
from signoff.runs.agents import step_agent
from signoff.runs.prompts import run_opening, step_text
from signoff.runs.service import end_unfinished_steps
from signoff.runs.states import run_transition, step_transition, transition_run, transition_step
from signoff.tools.base import ToolContext, ToolResult

logger = logging.getLogger(__name__)

MAX_BACKOFF = timedelta(minutes=5)

# The tables, for the hot path's Core statements (no ORM objects, identity map or flush).
_RUNS = cast(Table, Run.__table__)
_STEPS = cast(Table, RunStep.__table__)
_ASSETS = cast(Table, Asset.__table__)
_WORKFLOWS = cast(Table, Workflow.__table__)
_TEAMS = cast(Table, Team.__table__)
_MEMORY = cast(Table, MemoryEntry.__table__)
_MESSAGES = cast(Table, ConversationMessage.__table__)


def _bind(name: str, table: Table, column: str) -> BindParameter[Any]:
    return bindparam(name, type_=table.c[column].type)


# Built once: a statement object caches its own cache key, so executing one costs no
# construction, coercion or cache-key generation (which showed up in the bench's samples).
_CLAIM_ROW = (
    select(
        _RUNS.c.status.label("run_status"),
        _RUNS.c.current_step_index,
        _RUNS.c.step_count,
        _RUNS.c.team_id,
        _RUNS.c.workflow_id,
        _RUNS.c.conversation_id,
        _STEPS.c.status,
        _STEPS.c.attempt,
        _STEPS.c.next_attempt_at,
        _STEPS.c.description,
        _STEPS.c.tool_name,
        _STEPS.c.tool_input,
        _STEPS.c.requires_approval,
        _STEPS.c.approval_prompt,
    )
    .join_from(_RUNS, _STEPS, _STEPS.c.run_id == _RUNS.c.id)
    .where(_RUNS.c.id == bindparam("b_run"), _STEPS.c.step_index == bindparam("b_step"))
    .with_for_update(of=_RUNS)
)
# A run's opening context (its first step's message): the workflow, the team, its core memory.
_OPENING = (
    select(_WORKFLOWS.c.title, _WORKFLOWS.c.goal, _TEAMS.c.name, _MEMORY.c.value)
    .join_from(_WORKFLOWS, _TEAMS, _TEAMS.c.id == _WORKFLOWS.c.team_id)
    .outerjoin(_MEMORY, and_(_MEMORY.c.team_id == _TEAMS.c.id, _MEMORY.c.key == CORE_KEY))
    .where(_WORKFLOWS.c.id == bindparam("b_workflow"))
)
# Bind names are unique across the statements below, so that their parameters can be merged
# into one dict for PostgreSQL's single-statement record: a transition's columns take the
# prefix of what moves ("r_" the run, "s_" the step that finished, "l_" the step leased).
_START_RUN = (
    update(_RUNS)
    .where(_RUNS.c.id == bindparam("b_run"))
    .values(
        status=_bind("r_status", _RUNS, "status"),
        updated_at=_bind("r_updated_at", _RUNS, "updated_at"),
    )
)
# The direct record's statements carry their own guards: each matches its row only in the
# state the record expects (the run running, the step still under this lease, the next one
# pending), and a miss rolls the transaction back for the general path to decide. The run's row
# comes first: every state change locks the run before its steps (see repository.lock_run).
_RUN_RUNNING = (_RUNS.c.id == bindparam("b_run"), _RUNS.c.status == RunStatus.RUNNING)


def _run_values(**values: Any) -> dict[str, Any]:
    """A direct record's update of its run: the transition's columns, the step's usage added to
    the run's, and ``values``."""
    return {
        "status": _bind("r_status", _RUNS, "status"),
        "updated_at": _bind("r_updated_at", _RUNS, "updated_at"),
        "input_tokens": _RUNS.c.input_tokens + bindparam("b_input_tokens", type_=Integer),
        "output_tokens": _RUNS.c.output_tokens + bindparam("b_output_tokens", type_=Integer),
        "model_requests": _RUNS.c.model_requests + bindparam("b_requests", type_=Integer),
        **values,
    }


_ADVANCE_VALUES = _run_values(current_step_index=bindparam("b_next", type_=Integer))
_ADVANCE_RUN = update(_RUNS).where(*_RUN_RUNNING).values(_ADVANCE_VALUES)
_COMPLETE_RUN = (
    update(_RUNS)
    .where(*_RUN_RUNNING)
    .values(_run_values(finished_at=_bind("r_finished_at", _RUNS, "finished_at")))
)
# The step that finished: running under this lease, needing no approval.
_FINISH_GUARD = (
    _STEPS.c.step_index == bindparam("b_step"),
    _STEPS.c.status == StepStatus.RUNNING,
    _STEPS.c.claim_token == bindparam("b_claim"),
    _STEPS.c.requires_approval.is_(False),
)
_FINISH_VALUES = {
    "status": _bind("s_status", _STEPS, "status"),
    "finished_at": _bind("s_finished_at", _STEPS, "finished_at"),
    "output": _bind("b_output", _STEPS, "output"),
    "output_data": _bind("b_output_data", _STEPS, "output_data"),
    "error": None,
    "claim_token": None,
    "claimed_until": None,
    "input_tokens": _STEPS.c.input_tokens + bindparam("b_input_tokens", type_=Integer),
    "output_tokens": _STEPS.c.output_tokens + bindparam("b_output_tokens", type_=Integer),
}
_FINISH_STEP = (
    update(_STEPS)
    .where(_STEPS.c.run_id == bindparam("b_run"), *_FINISH_GUARD)
    .values(_FINISH_VALUES)
)
# A lease on a step: pending, at the attempt the job names.
_LEASE_GUARD = (
    _STEPS.c.step_index == bindparam("l_step"),
    _STEPS.c.status == StepStatus.PENDING,
    _STEPS.c.attempt == bindparam("l_attempt", type_=Integer),
)
_LEASE_VALUES = {
    "status": _bind("l_status", _STEPS, "status"),
    "claim_token": _bind("l_token", _STEPS, "claim_token"),
    "claimed_until": _bind("l_until", _STEPS, "claimed_until"),
    "started_at": func.coalesce(_STEPS.c.started_at, _bind("l_now", _STEPS, "started_at")),
}
_LEASE_STEP = (
    update(_STEPS).where(_STEPS.c.run_id == bindparam("b_run"), *_LEASE_GUARD).values(_LEASE_VALUES)
)
# What the next step's message needs, returned by the chain's lease on it.
_LEASED = (
    _STEPS.c.description,
    _STEPS.c.tool_name,
    _STEPS.c.tool_input,
    _STEPS.c.requires_approval,
    _STEPS.c.approval_prompt,
)
_LEASE_NEXT = _LEASE_STEP.returning(*_LEASED)
_INSERT_ASSET = insert(_ASSETS)


def _chain_record(with_asset: bool) -> Select[Any]:
    """PostgreSQL: the chain's record (:meth:`StepExecutor._record_direct` for a step that is
    not the run's last) as one statement, run in autocommit: one round trip where the
    transaction takes six. Its parameters are the other statements' merged, plus the messages
    (``m_*``: the rows as one JSON array) and the asset's columns (``a_*``). It returns the next
    step's row, or nothing.

    It is all or nothing without a transaction to roll back: the run's row is locked first (the
    order of every state change) and each write depends on the one before it through its
    RETURNING, so once one misses, none after it matches. The step finishes only if the next
    one is pending, so with the run locked the lease after it cannot miss either."""
    locked = select(_RUNS.c.id).where(*_RUN_RUNNING).with_for_update().cte("locked_run")
    following = _STEPS.alias("following")
    finished = (
        update(_STEPS)
        .where(
            _STEPS.c.run_id == select(locked.c.id).scalar_subquery(),
            *_FINISH_GUARD,
            following.c.run_id == _STEPS.c.run_id,
            following.c.step_index == bindparam("l_step"),
            following.c.status == StepStatus.PENDING,
            following.c.attempt == bindparam("l_attempt", type_=Integer),
        )
        .values(_FINISH_VALUES)
        .returning(_STEPS.c.run_id)
        .cte("finished_step")
    )
    leased = (
        update(_STEPS)
        .where(_STEPS.c.run_id == select(finished.c.run_id).scalar_subquery(), *_LEASE_GUARD)
        .values(_LEASE_VALUES)
        .returning(_STEPS.c.run_id, *_LEASED)
        .cte("leased_step")
    )
    advanced = (
        update(_RUNS)
        .where(
            _RUNS.c.id == select(leased.c.run_id).scalar_subquery(),
            _RUNS.c.status == RunStatus.RUNNING,
        )
        .values(_ADVANCE_VALUES)
        .returning(_RUNS.c.id)
        .cte("advanced_run")
    )
    recorded = exists(select(advanced.c.id))
    # The rows as one JSON array (text): psycopg escapes a text[] array's elements one
    # character at a time, which costs more than the statement saves. ``json`` (not ``jsonb``)
    # returns each element as the very text it was given.
    incoming = func.json_array_elements(
        sql_cast(bindparam("m_rows", type_=Text), JSON)
    ).table_valued("value", with_ordinality="ordinality")
    messages = (
        insert(_MESSAGES)
        .from_select(
            ["conversation_id", "position", "data", "created_at"],
            select(
                _typed("m_conversation", _MESSAGES, "conversation_id"),
                bindparam("m_first", type_=Integer) + incoming.c.ordinality - 1,
                sql_cast(incoming.c.value, Text),
                _typed("m_created_at", _MESSAGES, "created_at"),
            ).where(recorded),
        )
        .cte("new_messages")
    )
    statement = select(*(leased.c[column.name] for column in _LEASED)).add_cte(advanced, messages)
    if with_asset:
        columns = [column.name for column in _ASSETS.c]
        asset = (
            insert(_ASSETS)
            .from_select(
                columns,
                select(*(_typed(f"a_{name}", _ASSETS, name) for name in columns)).where(recorded),
            )
            .cte("new_asset")
        )
        statement = statement.add_cte(asset)
    return statement


def _typed(name: str, table: Table, column: str) -> Cast[Any]:
    """A parameter in a SELECT list, cast to its column's type (PostgreSQL would take an untyped
    one, a NULL say, as text)."""
    return sql_cast(_bind(name, table, column), table.c[column].type)


_CHAIN_RECORD = {with_asset: _chain_record(with_asset) for with_asset in (False, True)}


def _prefixed(prefix: str, values: dict[str, Any]) -> dict[str, Any]:
    """``values`` as the parameters of binds named ``prefix`` + column (see above)."""
    return {f"{prefix}{name}": value for name, value in values.items()}


@dataclass(frozen=True)
class Claim:
    """A worker's lease on a step, and everything the step needs to run."""

    job: StepJob
    token: str
    team_id: str
    workflow_id: str
    conversation_id: str
    step_count: int
    tool_name: str
    requires_approval: bool
    history: list[ModelMessage]
    prompt: str | None


def _claim_for(
    job: StepJob,
    token: str,
    *,
    run: Any,
    step: Any,
    history: list[ModelMessage],
    opening: Row[Any] | None,
) -> Claim:
    """The claim on ``job``'s step under lease ``token``. ``run`` and ``step`` are the ORM
    objects, the direct claim's row, or (chaining) the previous claim and the next step's leased
    row: the same attribute names. ``opening`` is a run's first step's context
    (:data:`_OPENING`). A first attempt is told the step (a run's first step after the
    opening); a later one gets no message: the conversation ends with the feedback."""
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
                team_name=opening.name,
                title=opening.title,
                goal=opening.goal,
                core_memory=opening.value,
            )
            prompt = f"{context}\n\n{prompt}"
    return Claim(
        job=job,
        token=token,
        team_id=run.team_id,
        workflow_id=run.workflow_id,
        conversation_id=run.conversation_id,
        step_count=run.step_count,
        tool_name=step.tool_name,
        requires_approval=step.requires_approval,
        history=history,
        prompt=prompt,
    )


RunningStep = Literal["running"]


@dataclass(frozen=True)
class _Leased:
    """What a direct claim read and wrote: the run and step (:data:`_CLAIM_ROW`), the new
    lease's token, the conversation's stored rows, and a first step's opening context."""

    row: Row[Any]
    token: str
    history: list[str]
    opening: Row[Any] | None


@dataclass
class Outcome:
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


class _NotAsExpected(Exception):
    """Rolls a direct record back: a row was not in the state the record expects."""


class StepFailure(Exception):
    """The step did not produce a usable result; ``retryable`` says whether to try again."""

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


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

    # -- entry points -------------------------------------------------------------------------

    async def execute(self, job: StepJob) -> None:
        """Run the job's step if the job still names the current work, else do nothing; then
        the run's next steps, as long as each can start at once (the chain)."""
        claim = await self._claim(job)
        while claim is not None:
            outcome = await self._execute(claim)
            try:
                follow_up = await self._record(claim, outcome)
            except Exception as exc:
                # Recording failed (a database error, a bug): the worker is alive, so the step
                # must not wait for its lease to run out and be taken over as if it had crashed
                # (which asks the model again later, with the reason lost). The rolled-back
                # result becomes a failed attempt with its real error, retried like any other.
                logger.exception("recording the result of %s failed", claim.job.key)
                failure = Outcome(error=f"Recording the result failed: {type(exc).__name__}: {exc}")
                follow_up = await self._record(claim, failure)
            if follow_up.wake_mail:
                self.wake_mail()
            if follow_up.job is not None:
                await self.queue.enqueue(follow_up.job, not_before=follow_up.not_before)
            claim = follow_up.next_claim

    async def sweep(self) -> int:
        """Queue every step that is ready but perhaps not queued: after a crash between commit
        and enqueue, a retry whose delay passed, or a lease that ran out. Double enqueues are
        harmless."""
        async with self.db.read() as session:
            jobs = await repository.ready_jobs(session, utc_now())
        for job in jobs:
            await self.queue.enqueue(job)
        return len(jobs)

    # -- phase 1: claim -----------------------------------------------------------------------

    async def _claim(self, job: StepJob) -> Claim | None:
        """The lease on the job's step, or None when the job names nothing to do now. The
        usual claim (a pending step) is one direct transaction; a step that is already running
        (a lease held, or one that ran out: a takeover) goes to the general path."""
        leased = await self.db.write_direct(partial(self._lease_pending, job))
        if leased == "running":
            return await self._claim_running(job)
        if leased is None:
            return None
        return _claim_for(
            job,
            leased.token,
            run=leased.row,
            step=leased.row,
            history=conversation.parse(leased.history) if leased.history else [],
            opening=leased.opening,
        )

    def _lease_pending(self, job: StepJob, connection: Connection) -> _Leased | RunningStep | None:
        """In a direct transaction: lease the job's step if it is the run's current step and
        attempt, pending and due; "running" if it is running (see :meth:`_claim_running`)."""
        row = connection.execute(
            _CLAIM_ROW, {"b_run": job.run_id, "b_step": job.step_index}
        ).first()
        if (
            row is None
            or row.run_status not in (RunStatus.RUNNING, RunStatus.APPROVED)
            or row.current_step_index != job.step_index
            or row.attempt != job.attempt
        ):
            return None
        if row.status == StepStatus.RUNNING:
            return "running"
        now = utc_now()
        if row.status != StepStatus.PENDING or (row.next_attempt_at and row.next_attempt_at > now):
            return None  # done, or a retry whose backoff has not passed (the sweep queues it)
        token = new_id()
        connection.execute(
            _LEASE_STEP,
            {
                "b_run": job.run_id,
                "l_step": job.step_index,
                **_prefixed(
                    "l_",
                    step_transition(job.run_id, job.step_index, row.status, StepStatus.RUNNING),
                ),
                "l_attempt": job.attempt,
                "l_token": token,
                "l_until": now + timedelta(seconds=self.settings.step_lease_seconds),
                "l_now": now,
            },
        )
        if row.run_status == RunStatus.APPROVED:
            connection.execute(
                _START_RUN,
                {
                    "b_run": job.run_id,
                    **_prefixed(
                        "r_", run_transition(job.run_id, row.run_status, RunStatus.RUNNING)
                    ),
                },
            )
        history: list[str] = list(
            connection.execute(
                conversation.LOAD_ROWS, {"b_conversation": row.conversation_id}
            ).scalars()
        )
        opening = None
        if job.step_index == 0 and job.attempt == 1:
            opening = connection.execute(_OPENING, {"b_workflow": row.workflow_id}).one()
        return _Leased(row=row, token=token, history=history, opening=opening)

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
                return None  # changed since the direct claim looked
            now = utc_now()
            if step.claimed_until is not None and step.claimed_until > now:
                return None  # another worker holds the lease
            step.takeovers += 1
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
        step.claimed_until = now + timedelta(seconds=self.settings.step_lease_seconds)
        step.started_at = step.started_at or now
        opening = None
        if step.step_index == 0 and step.attempt == 1:
            opening = (await session.execute(_OPENING, {"b_workflow": run.workflow_id})).one()
        # No flush: the commit writes the lease in the same round trip.
        return _claim_for(
            job, step.claim_token, run=run, step=step, history=history, opening=opening
        )

    # -- phase 2: execute ---------------------------------------------------------------------

    async def _execute(self, claim: Claim) -> Outcome:
        work = asyncio.create_task(self._call_model(claim))
        lease_lost = False
        interval = self.settings.step_lease_seconds / 3
        try:
            while not work.done():
                done, _ = await asyncio.wait({work}, timeout=interval)
                if done:
                    break
                if not await self._renew_lease(claim):
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
            team_id=claim.team_id,
            workflow_id=claim.workflow_id,
            run_id=claim.job.run_id,
            step_index=claim.job.step_index,
            attempt=claim.job.attempt,
        )
        try:
            result = await step_agent(claim.tool_name).run(
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

    async def _renew_lease(self, claim: Claim) -> bool:
        """Extend the lease if it is still ours; False once a stop or a takeover took it."""
        until = utc_now() + timedelta(seconds=self.settings.step_lease_seconds)
        async with self.db.write() as session:
            result = await session.execute(
                update(RunStep)
                .where(
                    RunStep.run_id == claim.job.run_id,
                    RunStep.step_index == claim.job.step_index,
                    RunStep.claim_token == claim.token,
                    RunStep.status == StepStatus.RUNNING,
                )
                .values(claimed_until=until)
            )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    # -- phase 3: record ----------------------------------------------------------------------

    async def _record(self, claim: Claim, outcome: Outcome) -> FollowUp:
        if outcome.lease_lost:
            logger.info("step %s abandoned: its lease was taken", claim.job.key)
            return FollowUp()
        if outcome.result is not None and not claim.requires_approval:
            recorded = await self._record_direct(claim, outcome.result, outcome)
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

    async def _record_direct(
        self, claim: Claim, result: ToolResult, outcome: Outcome
    ) -> FollowUp | None:
        """The hot path, in one direct transaction: a step that needs no approval completed, so
        record it and either claim the next step (the chain) or, after the last, complete the
        run and write its email. None when the rows are not as expected (stopped, taken over,
        …): then nothing was written, and the general path decides. On PostgreSQL the chain is
        one statement (:func:`_chain_record`)."""
        job = claim.job
        last = job.step_index + 1 == claim.step_count
        chain_statement = not last and not self.db.is_sqlite
        # Everything that needs no database is prepared before the transaction, which on
        # SQLite holds the write lock.
        rows = conversation.dump(outcome.messages)
        # The history was loaded under this lease and nobody else appends while it is held, so
        # its length is where the new messages go.
        position = len(claim.history)
        output_data = result.data or None
        asset: dict[str, Any] | None = None
        if result.asset_type is not None:
            asset = {
                "id": new_id(),
                "team_id": claim.team_id,
                "workflow_id": claim.workflow_id,
                "run_id": job.run_id,
                "step_index": job.step_index,
                "attempt": job.attempt,
                "type": result.asset_type,
                "status": AssetStatus.FINAL,
                "content": result.content,
                "data": result.data,
                "mime_type": result.mime_type,
                "blob": result.blob,
                "created_at": utc_now(),
            }
            output_data = {**(result.data or {}), "assetId": asset["id"]}
        next_job = StepJob(job.run_id, job.step_index + 1, 1)
        token = new_id()
        # One dict for every statement (their bind names do not clash): each takes its own.
        params: dict[str, Any] = {
            "b_run": job.run_id,
            "b_step": job.step_index,
            "b_claim": claim.token,
            "b_output": result.content or result.text,
            "b_output_data": output_data,
            "b_input_tokens": outcome.input_tokens,
            "b_output_tokens": outcome.output_tokens,
            "b_requests": outcome.requests,
            "b_next": next_job.step_index,
            "l_step": next_job.step_index,
            "l_attempt": next_job.attempt,
            "l_token": token,
        }
        messages: list[dict[str, Any]] = []
        if chain_statement:
            params.update(
                m_conversation=claim.conversation_id,
                m_first=position,
                m_rows=f"[{','.join(rows)}]",
                m_created_at=utc_now(),
            )
            if asset is not None:
                params.update(_prefixed("a_", asset))
        else:
            messages = conversation.insert_params(claim.conversation_id, position, rows)

        def transitions() -> dict[str, Any]:
            # Taken in the transaction: a step finishes when its result is recorded, and the
            # next one starts after that.
            to = RunStatus.COMPLETED if last else RunStatus.RUNNING
            values = {
                **_prefixed("r_", run_transition(job.run_id, RunStatus.RUNNING, to)),
                **_prefixed(
                    "s_",
                    step_transition(
                        job.run_id, job.step_index, StepStatus.RUNNING, StepStatus.COMPLETED
                    ),
                ),
            }
            if not last:
                started = utc_now()
                values.update(
                    _prefixed(
                        "l_",
                        step_transition(
                            job.run_id, next_job.step_index, StepStatus.PENDING, StepStatus.RUNNING
                        ),
                    ),
                    l_until=started + timedelta(seconds=self.settings.step_lease_seconds),
                    l_now=started,
                )
            return values

        def write_chain(connection: Connection) -> Row[Any] | None:
            statement = _CHAIN_RECORD[asset is not None]
            return connection.execute(statement, {**params, **transitions()}).first()

        def write(connection: Connection) -> Row[Any] | None:
            def expect(matched: bool) -> None:
                if not matched:
                    raise _NotAsExpected

            values = {**params, **transitions()}
            run_update = _COMPLETE_RUN if last else _ADVANCE_RUN
            expect(connection.execute(run_update, values).rowcount == 1)
            expect(connection.execute(_FINISH_STEP, values).rowcount == 1)
            after = None
            if not last:
                after = connection.execute(_LEASE_NEXT, values).first()
                expect(after is not None)
            if messages:
                connection.execute(conversation.INSERT_MESSAGES, messages)
            if asset is not None:
                connection.execute(_INSERT_ASSET, asset)
            if last:
                emails.write_run_completed(connection, self.settings, job.run_id)
            return after

        if chain_statement:
            after = await self.db.write_direct(write_chain, one_statement=True)
            if after is None:
                return None
        else:
            try:
                after = await self.db.write_direct(write)
            except _NotAsExpected:
                return None
            if after is None:
                return FollowUp(wake_mail=True)  # the run completed, and its email is written
        # Go on with the history as a reload would give it (the stored rows parsed back). The
        # claim has the run's attribute names, and the leased row the step's.
        history = [*claim.history, *conversation.parse(rows)] if rows else claim.history
        return FollowUp(
            next_claim=_claim_for(
                next_job, token, run=claim, step=after, history=history, opening=None
            )
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
            return FollowUp(wake_mail=True)
        transition_step(step, StepStatus.COMPLETED)
        if step.step_index + 1 >= run.step_count:
            transition_run(run, RunStatus.COMPLETED)
            await emails.run_completed(session, self.settings, run)
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
