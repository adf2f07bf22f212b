"""The hot path's SQL: a step's usual claim and the record of a step that needs no approval.

Every run goes through these two writes once per step, so they are Core statements built once
(a statement caches its own cache key: executing one costs no construction or coercion), run
by :meth:`signoff.db.Database.write_direct`: one transaction on a synchronous connection in a
thread, one hand-off per transaction instead of one per statement. The executor decides what
happens to a run; this module says how the usual case reaches the database, and hands back
typed rows instead of SQLAlchemy's.

Each write carries its own guards: it matches its row only in the state the record expects
(the run running, the step still under this lease, the next one pending). A guard that misses
rolls everything back and the caller gets None: the executor's general (ORM) path then looks
at the rows and decides (a stop, a takeover, an approval). Status changes are still checked by
:mod:`signoff.runs.states`. The run's row always comes first: every state change locks the run
before its steps (see ``repository.lock_run``).

The conversation's and the outbox's statements live here too: the ORM side
(:mod:`signoff.runs.conversation`, :mod:`signoff.runs.emails`) runs the same ones in its
session.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Literal, NamedTuple, cast

from sqlalchemy import (
    JSON,
    BindParameter,
    Cast,
    Connection,
    Executable,
    Integer,
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

from signoff.db import Database
from signoff.kit.clock import utc_now
from signoff.kit.ids import new_id
from signoff.models import (
    Asset,
    AssetStatus,
    ConversationMessage,
    Membership,
    MemoryEntry,
    OutboxMail,
    Role,
    Run,
    RunStatus,
    RunStep,
    StepStatus,
    Team,
    User,
    Workflow,
)
from signoff.models.memory import CORE_KEY
from signoff.queue.jobs import StepJob
from signoff.runs.states import run_transition, step_transition

JsonObject = dict[str, object]
Params = dict[str, object]

# -- typed rows ---------------------------------------------------------------------------------


class ClaimedRun(NamedTuple):
    """The run's columns that a claim carries."""

    team_id: str
    workflow_id: str
    conversation_id: str
    step_count: int


class PlannedStep(NamedTuple):
    """A step's columns from the plan: what its message says (see ``prompts.step_text``) and
    whether a person approves its output. The order is :data:`_PLANNED`'s."""

    description: str
    tool_name: str
    tool_input: JsonObject
    requires_approval: bool
    approval_prompt: str | None


class Opening(NamedTuple):
    """A run's opening context (its first step's message): the workflow, the team, the team's
    core memory. The order is :data:`OPENING`'s."""

    title: str
    goal: str
    team_name: str
    core_memory: str | None


@dataclass(frozen=True)
class PendingClaim:
    """A lease just taken on a pending step (:func:`claim_pending`), with what the step needs:
    the conversation's stored rows (to parse) and, for a run's first step, its opening."""

    token: str
    run: ClaimedRun
    step: PlannedStep
    history: list[str]
    opening: Opening | None


StepRunning = Literal["running"]


@dataclass(frozen=True)
class NewAsset:
    """An asset's row, written with the step that produced it."""

    id: str
    team_id: str
    workflow_id: str
    run_id: int
    step_index: int
    attempt: int
    type: str
    status: AssetStatus
    content: str
    data: JsonObject
    mime_type: str
    blob: bytes | None
    created_at: datetime


@dataclass(frozen=True)
class CompletedStep:
    """A step that needs no approval and completed under lease ``claim_token``: its output,
    usage, new conversation rows (stored from ``position``) and asset. Unless it is the run's
    last, its record leases the next step (attempt 1) under ``next_token`` for ``lease``."""

    job: StepJob
    claim_token: str
    last: bool
    output: str
    output_data: JsonObject | None
    warnings: list[JsonObject] | None
    input_tokens: int
    output_tokens: int
    requests: int
    conversation_id: str
    position: int
    rows: list[str]
    asset: NewAsset | None
    next_token: str
    lease: timedelta


class RunOwner(NamedTuple):
    """One row of :data:`RUN_AND_OWNERS`: the run and its workflow as their emails read them,
    and one owner of the team (all None for a team without one). The order is the statement's."""

    id: int
    team_id: str
    run_number: int
    step_count: int
    workflow_id: str
    title: str
    email: str | None
    name: str | None
    email_verified_at: datetime | None


# The outbox rows of a run's completion email, composed from its owners (signoff.runs.emails).
ComposeMails = Callable[[list[RunOwner]], list[JsonObject]]
RunCompleted = Literal["run completed"]

# -- statements ---------------------------------------------------------------------------------

_RUNS = cast(Table, Run.__table__)
_STEPS = cast(Table, RunStep.__table__)
_ASSETS = cast(Table, Asset.__table__)
_WORKFLOWS = cast(Table, Workflow.__table__)
_TEAMS = cast(Table, Team.__table__)
_MEMORY = cast(Table, MemoryEntry.__table__)
_MESSAGES = cast(Table, ConversationMessage.__table__)
_MEMBERSHIPS = cast(Table, Membership.__table__)
_USERS = cast(Table, User.__table__)


def _bind(name: str, table: Table, column: str) -> BindParameter[object]:
    return bindparam(name, type_=table.c[column].type)


# Bind names are unique across the statements below, so one dict of parameters serves them all
# (each takes its own): "b_" the job's, and a transition's columns prefixed with what moves ("r_"
# the run, "s_" the step that finished, "l_" the step leased).
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
    # The step too: a claim that waited for the run re-reads only what it locks (see
    # signoff.runs.repository.lock_run_at_step).
    .with_for_update(of=(_RUNS, _STEPS))
)
OPENING = (
    select(_WORKFLOWS.c.title, _WORKFLOWS.c.goal, _TEAMS.c.name, _MEMORY.c.value)
    .join_from(_WORKFLOWS, _TEAMS, _TEAMS.c.id == _WORKFLOWS.c.team_id)
    .outerjoin(_MEMORY, and_(_MEMORY.c.team_id == _TEAMS.c.id, _MEMORY.c.key == CORE_KEY))
    .where(_WORKFLOWS.c.id == bindparam("b_workflow"))
)
_START_RUN = (
    update(_RUNS)
    .where(_RUNS.c.id == bindparam("b_run"))
    .values(
        status=_bind("r_status", _RUNS, "status"),
        updated_at=_bind("r_updated_at", _RUNS, "updated_at"),
    )
)
_RUN_RUNNING = (_RUNS.c.id == bindparam("b_run"), _RUNS.c.status == RunStatus.RUNNING)


def _run_values(**values: object) -> dict[str, object]:
    """A record's update of its run: the transition's columns, the step's usage added to the
    run's, and ``values``."""
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
    "warnings": _bind("b_warnings", _STEPS, "warnings"),
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
_PLANNED = (
    _STEPS.c.description,
    _STEPS.c.tool_name,
    _STEPS.c.tool_input,
    _STEPS.c.requires_approval,
    _STEPS.c.approval_prompt,
)
_LEASE_NEXT = _LEASE_STEP.returning(*_PLANNED)
_INSERT_ASSET = insert(_ASSETS)
# The conversation, one message per row (signoff.runs.conversation says what a row holds).
# A Core executemany, not the ORM's bulk insert.
INSERT_MESSAGES = insert(_MESSAGES)
LOAD_MESSAGES = (
    select(_MESSAGES.c.data)
    .where(_MESSAGES.c.conversation_id == bindparam("b_conversation"))
    .order_by(_MESSAGES.c.position)
)
# A run with its workflow and owners, in one statement; its columns carry the names the
# emails' templates use (see RunOwner).
RUN_AND_OWNERS = (
    select(
        _RUNS.c.id,
        _RUNS.c.team_id,
        _RUNS.c.run_number,
        _RUNS.c.step_count,
        _WORKFLOWS.c.id.label("workflow_id"),
        _WORKFLOWS.c.title,
        _USERS.c.email,
        _USERS.c.name,
        _USERS.c.email_verified_at,
    )
    .join_from(_RUNS, _WORKFLOWS, _WORKFLOWS.c.id == _RUNS.c.workflow_id)
    .outerjoin(
        _MEMBERSHIPS,
        and_(_MEMBERSHIPS.c.team_id == _RUNS.c.team_id, _MEMBERSHIPS.c.role == Role.OWNER),
    )
    .outerjoin(_USERS, _USERS.c.id == _MEMBERSHIPS.c.user_id)
    .where(_RUNS.c.id == bindparam("b_run"))
    .order_by(_MEMBERSHIPS.c.created_at, _USERS.c.email)
)
INSERT_MAIL = insert(cast(Table, OutboxMail.__table__))


def _chain_record(with_asset: bool) -> Executable:
    """PostgreSQL: the record of a step that is not the run's last (:func:`_record_completed`)
    as one statement, run in autocommit: one round trip where the transaction takes six. Its
    parameters are the other statements' (:func:`_record_params`), plus the messages (``m_*``,
    the rows as one JSON array) and the asset's columns (``a_*``). It returns the next step's
    planned columns, or nothing.

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
        .returning(_STEPS.c.run_id, *_PLANNED)
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
    statement = select(*(leased.c[column.name] for column in _PLANNED)).add_cte(advanced, messages)
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


def _typed(name: str, table: Table, column: str) -> Cast[object]:
    """A parameter in a SELECT list, cast to its column's type (PostgreSQL would take an untyped
    one, a NULL say, as text)."""
    return sql_cast(_bind(name, table, column), table.c[column].type)


_CHAIN_RECORD = {with_asset: _chain_record(with_asset) for with_asset in (False, True)}


def message_params(conversation_id: str, position: int, rows: list[str]) -> list[Params]:
    """:data:`INSERT_MESSAGES`'s parameters for stored ``rows``, the first at ``position``."""
    now = utc_now()
    return [
        {
            "conversation_id": conversation_id,
            "position": position + offset,
            "data": data,
            "created_at": now,
        }
        for offset, data in enumerate(rows)
    ]


def _prefixed(prefix: str, values: Mapping[str, object]) -> Params:
    """``values`` as the parameters of binds named ``prefix`` + column."""
    return {f"{prefix}{name}": value for name, value in values.items()}


# -- the claim ----------------------------------------------------------------------------------


async def claim_pending(
    db: Database, job: StepJob, lease: timedelta
) -> PendingClaim | StepRunning | None:
    """Lease the job's step for ``lease`` if it is the run's current step and attempt, pending
    and due, in one direct transaction. "running" if it is running (a lease held, or one that
    ran out: the caller's general path decides); None when the job names nothing to do now."""
    return await db.write_direct(partial(_claim_pending, job, lease))


def _claim_pending(
    job: StepJob, lease: timedelta, connection: Connection
) -> PendingClaim | StepRunning | None:
    row = connection.execute(_CLAIM_ROW, {"b_run": job.run_id, "b_step": job.step_index}).first()
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
                "l_", step_transition(job.run_id, job.step_index, row.status, StepStatus.RUNNING)
            ),
            "l_attempt": job.attempt,
            "l_token": token,
            "l_until": now + lease,
            "l_now": now,
        },
    )
    if row.run_status == RunStatus.APPROVED:
        connection.execute(
            _START_RUN,
            {
                "b_run": job.run_id,
                **_prefixed("r_", run_transition(job.run_id, row.run_status, RunStatus.RUNNING)),
            },
        )
    history: list[str] = list(
        connection.execute(LOAD_MESSAGES, {"b_conversation": row.conversation_id}).scalars()
    )
    opening = None
    if job.step_index == 0 and job.attempt == 1:
        opening = Opening._make(connection.execute(OPENING, {"b_workflow": row.workflow_id}).one())
    return PendingClaim(
        token=token,
        run=ClaimedRun(row.team_id, row.workflow_id, row.conversation_id, row.step_count),
        step=PlannedStep(
            row.description,
            row.tool_name,
            row.tool_input,
            row.requires_approval,
            row.approval_prompt,
        ),
        history=history,
        opening=opening,
    )


async def load_opening(session: AsyncSession, workflow_id: str) -> Opening:
    """A run's opening context, in an ORM transaction (a takeover of a run's first step)."""
    return Opening._make((await session.execute(OPENING, {"b_workflow": workflow_id})).one())


async def renew_lease(db: Database, job: StepJob, token: str, until: datetime) -> bool:
    """Extend the lease to ``until`` if it is still ``token``; False once a stop or a takeover
    took it."""
    async with db.write() as session:
        result = await session.execute(
            update(RunStep)
            .where(
                RunStep.run_id == job.run_id,
                RunStep.step_index == job.step_index,
                RunStep.claim_token == token,
                RunStep.status == StepStatus.RUNNING,
            )
            .values(claimed_until=until)
        )
    return bool(result.rowcount)  # type: ignore[attr-defined]


# -- the record ---------------------------------------------------------------------------------


class _NotAsExpected(Exception):
    """Rolls a record back: a row was not in the state the record expects."""


async def record_completed(
    db: Database, step: CompletedStep, compose_mails: ComposeMails
) -> PlannedStep | RunCompleted | None:
    """Record ``step`` in one direct transaction: finish it, add its usage to the run's, store
    its messages and asset, and either lease the next step and move the run on to it (the
    chain: its planned columns are returned) or, after the last, complete the run and write its
    email to the outbox ("run completed"). None when a guard missed: nothing was written.

    On PostgreSQL the chain's record is one statement (:func:`_chain_record`); SQLite has no
    data-modifying CTEs, and a run's last step also writes its email."""
    if not step.last and not db.is_sqlite:
        return await db.write_direct(partial(_record_chained, step), one_statement=True)
    try:
        return await db.write_direct(partial(_record_completed, step, compose_mails))
    except _NotAsExpected:
        return None


def _record_chained(step: CompletedStep, connection: Connection) -> PlannedStep | None:
    params = _record_params(step)
    params.update(
        m_conversation=step.conversation_id,
        m_first=step.position,
        m_rows=f"[{','.join(step.rows)}]",
        m_created_at=utc_now(),
    )
    if step.asset is not None:
        params.update(_prefixed("a_", vars(step.asset)))
    leased = connection.execute(_CHAIN_RECORD[step.asset is not None], params).first()
    return None if leased is None else PlannedStep._make(leased)


def _record_completed(
    step: CompletedStep, compose_mails: ComposeMails, connection: Connection
) -> PlannedStep | RunCompleted:
    def expect(matched: bool) -> None:
        if not matched:
            raise _NotAsExpected

    params = _record_params(step)
    expect(connection.execute(_COMPLETE_RUN if step.last else _ADVANCE_RUN, params).rowcount == 1)
    expect(connection.execute(_FINISH_STEP, params).rowcount == 1)
    leased = None
    if not step.last:
        leased = connection.execute(_LEASE_NEXT, params).first()
        expect(leased is not None)
    if step.rows:
        connection.execute(
            INSERT_MESSAGES, message_params(step.conversation_id, step.position, step.rows)
        )
    if step.asset is not None:
        connection.execute(_INSERT_ASSET, vars(step.asset))
    if leased is None:
        _write_completion_mails(connection, step.job.run_id, compose_mails)
        return "run completed"
    return PlannedStep._make(leased)


def _record_params(step: CompletedStep) -> Params:
    """The record's parameters. Taken in the transaction, for its timestamps: a step finishes
    when its result is recorded, and the next one starts after that."""
    job = step.job
    params: Params = {
        "b_run": job.run_id,
        "b_step": job.step_index,
        "b_claim": step.claim_token,
        "b_output": step.output,
        "b_output_data": step.output_data,
        "b_warnings": step.warnings,
        "b_input_tokens": step.input_tokens,
        "b_output_tokens": step.output_tokens,
        "b_requests": step.requests,
        **_prefixed(
            "r_",
            run_transition(
                job.run_id,
                RunStatus.RUNNING,
                RunStatus.COMPLETED if step.last else RunStatus.RUNNING,
            ),
        ),
        **_prefixed(
            "s_",
            step_transition(job.run_id, job.step_index, StepStatus.RUNNING, StepStatus.COMPLETED),
        ),
    }
    if not step.last:
        started = utc_now()
        params.update(
            _prefixed(
                "l_",
                step_transition(
                    job.run_id, job.step_index + 1, StepStatus.PENDING, StepStatus.RUNNING
                ),
            ),
            b_next=job.step_index + 1,
            l_step=job.step_index + 1,
            l_attempt=1,
            l_token=step.next_token,
            l_until=started + step.lease,
            l_now=started,
        )
    return params


def _write_completion_mails(connection: Connection, run_id: int, compose: ComposeMails) -> None:
    owners = [RunOwner._make(row) for row in connection.execute(RUN_AND_OWNERS, {"b_run": run_id})]
    mails = compose(owners)
    if mails:
        connection.execute(INSERT_MAIL, mails)
