"""The allowed run and step transitions (docs/engine.md), and the one function that performs them.

Every status change of a run goes through :func:`run_transition` (via :func:`transition_run`
for an ORM object, or directly for the engine's Core statements), which checks this table and
refuses anything else; ``completed`` and ``failed`` are final.
"""

from __future__ import annotations

from typing import Any

from signoff.errors import AppError, ErrorCode
from signoff.kit.clock import utc_now
from signoff.models import Run, RunStatus, RunStep, StepStatus

R = RunStatus
RUN_TRANSITIONS: dict[RunStatus, frozenset[RunStatus]] = {
    R.RUNNING: frozenset({R.RUNNING, R.AWAITING_APPROVAL, R.COMPLETED, R.FAILED}),
    R.AWAITING_APPROVAL: frozenset({R.APPROVED, R.FAILED}),
    R.APPROVED: frozenset({R.RUNNING, R.COMPLETED, R.FAILED}),
    R.COMPLETED: frozenset(),
    R.FAILED: frozenset(),
}

S = StepStatus
STEP_TRANSITIONS: dict[StepStatus, frozenset[StepStatus]] = {
    S.PENDING: frozenset({S.RUNNING, S.SKIPPED, S.FAILED}),
    # running → pending: a crashed worker's lease ran out, or a transient error will be retried
    S.RUNNING: frozenset({S.COMPLETED, S.AWAITING_APPROVAL, S.FAILED, S.PENDING, S.SKIPPED}),
    S.AWAITING_APPROVAL: frozenset({S.COMPLETED, S.PENDING, S.SKIPPED}),
    S.COMPLETED: frozenset(),
    S.FAILED: frozenset(),
    S.SKIPPED: frozenset(),
}

FINAL_RUN_STATUSES = frozenset({R.COMPLETED, R.FAILED})


class IllegalTransition(AppError):
    """A bug, not a user error: the engine tried a transition the table does not allow."""

    status = 500
    code = ErrorCode.ILLEGAL_TRANSITION


def run_transition(run_id: int, current: RunStatus, to: RunStatus) -> dict[str, Any]:
    """The column values of moving run ``run_id`` from ``current`` to ``to``, or
    :class:`IllegalTransition`: the one check, applied to an object by :func:`transition_run`
    and written as it is by the engine's Core statements."""
    if to not in RUN_TRANSITIONS[current]:
        raise IllegalTransition(f"run {run_id}: {current} → {to} is not allowed")
    now = utc_now()
    values: dict[str, Any] = {"status": to, "updated_at": now}
    if to in FINAL_RUN_STATUSES:
        values["finished_at"] = now
    return values


def step_transition(
    run_id: int, step_index: int, current: StepStatus, to: StepStatus
) -> dict[str, Any]:
    """The column values of a step's move, or :class:`IllegalTransition` (as for runs)."""
    if to not in STEP_TRANSITIONS[current]:
        raise IllegalTransition(f"run {run_id} step {step_index}: {current} → {to} is not allowed")
    values: dict[str, Any] = {"status": to}
    if to in (S.COMPLETED, S.FAILED, S.SKIPPED):
        values["finished_at"] = utc_now()
    return values


def transition_run(run: Run, to: RunStatus) -> None:
    for name, value in run_transition(run.id, run.status, to).items():
        setattr(run, name, value)


def transition_step(step: RunStep, to: StepStatus) -> None:
    for name, value in step_transition(step.run_id, step.step_index, step.status, to).items():
        setattr(step, name, value)
