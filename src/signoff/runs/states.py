"""The allowed run and step transitions (ENGINE.md), and the one function that performs them.

Every status change of a run goes through :func:`transition_run`, which checks this table and
refuses anything else; ``completed`` and ``failed`` are final.
"""

from __future__ import annotations

from signoff.errors import AppError
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
    code = "illegal_transition"


def transition_run(run: Run, to: RunStatus) -> None:
    if to not in RUN_TRANSITIONS[run.status]:
        raise IllegalTransition(f"run {run.id}: {run.status} → {to} is not allowed")
    now = utc_now()
    run.status = to
    run.updated_at = now
    if to in FINAL_RUN_STATUSES:
        run.finished_at = now


def transition_step(step: RunStep, to: StepStatus) -> None:
    if to not in STEP_TRANSITIONS[step.status]:
        raise IllegalTransition(
            f"run {step.run_id} step {step.step_index}: {step.status} → {to} is not allowed"
        )
    step.status = to
    if to in (S.COMPLETED, S.FAILED, S.SKIPPED):
        step.finished_at = utc_now()
