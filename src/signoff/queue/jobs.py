"""What a job carries: ids only, naming its work exactly (docs/engine.md, invariant 2)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

_DEFERRED = "signoff.deferred_jobs"


@dataclass(frozen=True, order=True)
class StepJob:
    """Execute step ``step_index`` of run ``run_id`` at ``attempt``.

    A job whose run is not at that step and attempt (or has ended) does nothing, so delivering
    one twice, or late, is harmless.
    """

    run_id: int
    step_index: int
    attempt: int

    @property
    def key(self) -> str:
        return f"step-{self.run_id}-{self.step_index}-{self.attempt}"


class JobQueue(Protocol):
    """Where committed work is handed to workers. Enqueue only after the commit."""

    async def enqueue(self, job: StepJob, *, not_before: datetime | None = None) -> None: ...


def defer(session: AsyncSession, job: StepJob) -> None:
    """Enqueue ``job`` once ``session``'s transaction commits (``Database.write`` does it); a
    crash in between is repaired by the engine's sweep."""
    session.info.setdefault(_DEFERRED, []).append(job)


def deferred(session_info: dict[Any, Any]) -> list[StepJob]:
    """The jobs a committed session deferred."""
    jobs: list[StepJob] = session_info.get(_DEFERRED, [])
    return jobs
