"""The emails a run sends, written to the outbox in the transaction that causes them.

Like plan emails, they go to every owner of the workflow's team (as in the original product).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from signoff.approvals.tokens import STEP_LINK_TTL, issue_step_token
from signoff.auth import repository as auth_repository
from signoff.config import Settings
from signoff.mail import service as mail
from signoff.models import Run, RunStep, Workflow
from signoff.runs import repository

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
    workflow = await session.get(Workflow, run.workflow_id)
    assert workflow is not None
    base = settings.public_base_url
    owners = await auth_repository.owner_recipients(session, settings, run.team_id)
    full_context = {
        **context,
        "workflow": workflow,
        "run": run,
        "run_url": f"{base}/dashboard/workflows/{workflow.id}/runs/{run.id}",
        "dashboard_url": f"{base}/dashboard/workflows/{workflow.id}",
    }
    for owner, _role in owners:
        await mail.enqueue(
            session,
            settings,
            kind=kind,
            to=owner.email,
            subject=f"{subject}: {workflow.title}",
            template=template,
            context={**full_context, "recipient_name": owner.name},
            team_id=run.team_id,
            inline_assets=inline_assets,
        )
    return [owner.email for owner, _role in owners]


def decision_urls(settings: Settings, run: Run, step: RunStep) -> tuple[str, str]:
    token = issue_step_token(
        settings,
        workflow_id=run.workflow_id,
        run_id=run.id,
        conversation_id=run.conversation_id,
        step_index=step.step_index,
        attempt=step.attempt,
    )
    link = f"{settings.public_base_url}/api/workflows/resume?token={token}"
    return f"{link}&action=approve", f"{link}&action=reject"


async def step_awaiting_approval(
    session: AsyncSession, settings: Settings, run: Run, step: RunStep
) -> list[str]:
    """Approve / Request changes links (2 h) with a preview of the exact pending output."""
    approve_url, reject_url = decision_urls(settings, run, step)
    preview = step.output or ""
    # An image is shown in the email itself, attached and referenced by Content-ID.
    image = (
        await repository.pending_asset(session, run.id, step.step_index, step.attempt)
        if step.tool_name == "generate_image"
        else None
    )
    return await _send_to_owners(
        session,
        settings,
        run,
        kind="step_approval",
        subject=f"Approval needed (step {step.step_index + 1}, attempt {step.attempt})",
        template="step_approval",
        context={
            "step": step,
            "preview": preview[:PREVIEW_LIMIT],
            "preview_cut": len(preview) > PREVIEW_LIMIT,
            "approve_url": approve_url,
            "reject_url": reject_url,
            "expires_hours": int(STEP_LINK_TTL.total_seconds() // 3600),
            "image_cid": mail.inline_cid(settings, image.id) if image else None,
        },
        inline_assets=(image.id,) if image else (),
    )


async def run_completed(session: AsyncSession, settings: Settings, run: Run) -> list[str]:
    return await _send_to_owners(
        session,
        settings,
        run,
        kind="run_completed",
        subject=f"Run {run.run_number} completed",
        template="run_completed",
        context={},
    )


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
