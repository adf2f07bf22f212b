"""The emails a run sends, written to the outbox in the transaction that causes them.

A step approval email goes to every member allowed to decide (owners and admins), each with
links of their own; completion and failure emails go to the team's owners (as in the original
product). Here is what they say and to whom; the run's completion email, which the executor's
fast path writes, reaches the outbox through :mod:`signoff.runs.step_store`
(:func:`run_completed_mails`).
"""

from __future__ import annotations

from typing import Any, NamedTuple

from sqlalchemy.ext.asyncio import AsyncSession

from signoff.approvals.tokens import issue_step_token, step_link_ttl, ttl_words
from signoff.auth.repository import decider_recipients, receives_team_mail
from signoff.config import Settings
from signoff.mail import service as mail
from signoff.models import OutboxMail, Run, RunStep, Workflow
from signoff.runs import repository
from signoff.runs.step_store import RUN_AND_OWNERS, RunOwner

PREVIEW_LIMIT = 4000


async def _send_to_owners(
    session: AsyncSession,
    settings: Settings,
    run: Run,
    *,
    kind: str,
    subject: str,
    template: str,
    context: dict[str, Any],
    inline_assets: tuple[str, ...] = (),
) -> list[str]:
    result = await session.execute(RUN_AND_OWNERS, {"b_run": run.id})
    workflow, owners = _workflow_and_owners(settings, [RunOwner._make(row) for row in result])
    for row in _owner_mails(
        settings,
        run,
        workflow,
        owners,
        kind=kind,
        subject=subject,
        template=template,
        context=context,
        inline_assets=inline_assets,
    ):
        session.add(OutboxMail(**row))
    return [email for email, _name in owners]


class _Workflow(NamedTuple):
    """A workflow as the templates read it."""

    id: str
    title: str


def _workflow_and_owners(
    settings: Settings, rows: list[RunOwner]
) -> tuple[_Workflow, list[tuple[str, str | None]]]:
    """From a run's owner rows: its workflow, and the owners (address, name) who receive its
    email."""
    workflow = _Workflow(rows[0].workflow_id, rows[0].title)
    owners = [
        (row.email, row.name)
        for row in rows
        if row.email is not None and receives_team_mail(settings, row.email_verified_at)
    ]
    return workflow, owners


def _owner_mails(
    settings: Settings,
    run: Run | RunOwner,
    workflow: _Workflow,
    owners: list[tuple[str, str | None]],
    *,
    kind: str,
    subject: str,
    template: str,
    context: dict[str, Any],
    inline_assets: tuple[str, ...] = (),
) -> list[dict[str, Any]]:
    """The outbox rows of one email to each owner (address, name). ``run`` is what the
    templates read: the ORM object, or the fast path's row with the same names."""
    base = settings.public_base_url
    full_context = {
        **context,
        "workflow": workflow,
        "run": run,
        "run_url": f"{base}/dashboard/workflows/{workflow.id}/runs/{run.id}",
        "dashboard_url": f"{base}/dashboard/workflows/{workflow.id}",
    }
    return [
        mail.compose(
            settings,
            kind=kind,
            to=email,
            subject=f"{subject}: {workflow.title}",
            template=template,
            context={**full_context, "recipient_name": name},
            team_id=run.team_id,
            inline_assets=inline_assets,
        )
        for email, name in owners
    ]


def decision_urls(
    settings: Settings, run: Run, step: RunStep, recipient_id: str | None = None
) -> tuple[str, str]:
    token = issue_step_token(
        settings,
        workflow_id=run.workflow_id,
        run_id=run.id,
        conversation_id=run.conversation_id,
        step_index=step.step_index,
        attempt=step.attempt,
        recipient_id=recipient_id,
    )
    link = f"{settings.public_base_url}/api/workflows/resume?token={token}"
    return f"{link}&action=approve", f"{link}&action=reject"


async def step_awaiting_approval(
    session: AsyncSession, settings: Settings, run: Run, step: RunStep
) -> list[str]:
    """Approve / Request changes links with a preview of the exact pending output, to every
    member allowed to decide (owners and admins), each with links of their own that name them."""
    preview = step.output or ""
    # An image is shown in the email itself, attached and referenced by Content-ID.
    image = (
        await repository.pending_asset(session, run.id, step.step_index, step.attempt)
        if step.tool_name == "generate_image"
        else None
    )
    workflow = await session.get(Workflow, run.workflow_id)
    assert workflow is not None
    context = {
        "step": step,
        "preview": preview[:PREVIEW_LIMIT],
        "preview_cut": len(preview) > PREVIEW_LIMIT,
        "expires_in": ttl_words(step_link_ttl(settings)),
        "image_cid": mail.inline_cid(settings, image.id) if image else None,
    }
    deciders = await decider_recipients(session, settings, run.team_id)
    for user in deciders:
        approve_url, reject_url = decision_urls(settings, run, step, user.id)
        rows = _owner_mails(
            settings,
            run,
            _Workflow(workflow.id, workflow.title),
            [(user.email, user.name)],
            kind="step_approval",
            subject=f"Approval needed (step {step.step_index + 1}, attempt {step.attempt})",
            template="step_approval",
            context={**context, "approve_url": approve_url, "reject_url": reject_url},
            inline_assets=(image.id,) if image else (),
        )
        session.add_all(OutboxMail(**row) for row in rows)
    return [user.email for user in deciders]


async def run_completed(session: AsyncSession, settings: Settings, run: Run) -> list[str]:
    return await _send_to_owners(session, settings, run, **_completed(run))


def _completed(run: Run | RunOwner) -> dict[str, Any]:
    return {
        "kind": "run_completed",
        "subject": f"Run {run.run_number} completed",
        "template": "run_completed",
        "context": {},
    }


def run_completed_mails(settings: Settings, rows: list[RunOwner]) -> list[dict[str, Any]]:
    """:func:`run_completed`'s outbox rows, from the run's owner rows: for the executor's fast
    path, which writes them in its own transaction (no session)."""
    workflow, owners = _workflow_and_owners(settings, rows)
    return _owner_mails(settings, rows[0], workflow, owners, **_completed(rows[0]))


async def run_failed(
    session: AsyncSession, settings: Settings, run: Run, step: RunStep | None
) -> list[str]:
    return await _send_to_owners(
        session,
        settings,
        run,
        kind="run_failed",
        subject=f"Run {run.run_number} failed",
        template="run_failed",
        context={"step": step},
    )
