"""Bodies of the audit endpoint, and the "who did it" shown on a run's steps and on the run."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from signoff.kit.schemas import ApiModel


class ActedBy(ApiModel):
    """Who took a decision (or stopped a run), from the audit trail."""

    actor: str = Field(description="An email address, or `email link` when nobody signed in.")
    user_id: str | None
    channel: str = Field(description="`dashboard`, `api` or `email_link`.")
    action: str = Field(description="`step.approve`, `step.reject` or `run.stop`.")
    at: datetime


class AuditEventOut(ApiModel):
    id: int
    at: datetime
    actor: str = Field(description="An email address, `email link`, or `run <id>`.")
    actor_user_id: str | None
    channel: str = Field(description="`api`, `dashboard`, `email_link` or `run`.")
    user_agent: str | None
    action: str
    object_type: str = Field(
        description="`workflow`, `run`, `step` (id `<runId>:<stepIndex>`), `member`, "
        "`invitation` or `memory` (id: the key)."
    )
    object_id: str
    workflow_id: str | None
    detail: str


class AuditPage(ApiModel):
    events: list[AuditEventOut]
    next_cursor: str | None = Field(
        description="Pass as ?cursor= (with the same filters) for the next page; null at the end."
    )
