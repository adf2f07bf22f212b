"""Recording the audit trail: :func:`record`, called by the services that make a change.

**How to call it.** A service that changes something a team must be able to account for calls
``record(session, actor, ...)`` with the session of that change, before it returns: the event
is written by the same transaction, so a change that rolls back leaves no event and no change
is committed without its event. ``actor`` says who and how (:class:`Actor`): endpoints get it
from the ``CurrentActor`` dependency (``signoff.audit.dependencies``: the signed-in person, the
channel, the user agent); an email link builds :meth:`Actor.email_link`; a run's own changes
(the memory tool) use :meth:`Actor.run`. ``action`` is one of :data:`ACTIONS`; ``object_type``
and ``object_id`` name what changed (a step is ``"<run id>:<step index>"``); ``workflow_id``
lets ``GET /api/audit?workflowId=`` find everything about a workflow; ``detail`` is a short
sentence for a person (no secrets: it is shown to the team's admins).

Services never commit, and neither does this.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy.ext.asyncio import AsyncSession

from signoff.models import AuditEvent

MAX_USER_AGENT = 300
MAX_DETAIL = 2000


class Channel(StrEnum):
    API = "api"
    DASHBOARD = "dashboard"
    EMAIL_LINK = "email_link"
    RUN = "run"  # a run's own change (the memory tool), no person involved


# Every action the trail records, and what it means (docs/security.md lists them too).
ACTIONS: dict[str, str] = {
    "plan.approve": "a draft's plan was approved: the workflow is active, run 1 started",
    "plan.edit": "a draft's plan was changed (a new revision)",
    "step.approve": "a paused step's output was approved",
    "step.reject": "changes were requested on a paused step",
    "run.stop": "a run was stopped",
    "workflow.archive": "a workflow was archived",
    "schedule.change": "a workflow's schedule or timezone was changed or removed",
    "member.invite": "an address was invited to the team",
    "invitation.revoke": "an invitation was withdrawn",
    "member.accept": "an invitation was accepted: a new member",
    "member.role": "a member's role was changed",
    "member.remove": "a member was removed",
    "member.leave": "a member left the team",
    "memory.create": "a memory entry was created",
    "memory.update": "a memory entry was changed",
    "memory.delete": "a memory entry was deleted",
}


@dataclass(frozen=True)
class Actor:
    """Who acted and how: plain values, built once per request (or link, or run)."""

    channel: Channel
    label: str
    """An email address, ``email link``, or ``run <id>``: what the trail shows."""
    user_id: str | None = None
    user_agent: str | None = None

    @classmethod
    def person(cls, user_id: str, email: str, channel: Channel, user_agent: str | None) -> Actor:
        return cls(channel=channel, label=email, user_id=user_id, user_agent=user_agent)

    @classmethod
    def email_link(cls, user_agent: str | None, *, user_id: str | None, email: str | None) -> Actor:
        """Whoever holds the link: the signed-in person (``user_id`` and ``email``), else the
        member it was emailed to (``user_id`` alone, the link's ``recipientId``; a link from
        before links named their recipient has none)."""
        if user_id is not None and email is not None:
            return cls.person(user_id, email, Channel.EMAIL_LINK, user_agent)
        return cls(
            channel=Channel.EMAIL_LINK, label="email link", user_id=user_id, user_agent=user_agent
        )

    @classmethod
    def run(cls, run_id: int) -> Actor:
        return cls(channel=Channel.RUN, label=f"run {run_id}")


def record(
    session: AsyncSession,
    actor: Actor,
    *,
    team_id: str,
    action: str,
    object_type: str,
    object_id: str,
    workflow_id: str | None = None,
    detail: str = "",
) -> AuditEvent:
    """Add one audit event to the caller's transaction (see the module docstring)."""
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action {action!r}")  # a bug, caught by the tests
    event = AuditEvent(
        team_id=team_id,
        actor_user_id=actor.user_id,
        actor=actor.label,
        channel=actor.channel.value,
        user_agent=actor.user_agent[:MAX_USER_AGENT] if actor.user_agent else None,
        action=action,
        object_type=object_type,
        object_id=object_id,
        workflow_id=workflow_id,
        detail=detail[:MAX_DETAIL],
    )
    session.add(event)
    return event
