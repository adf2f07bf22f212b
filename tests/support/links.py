"""Approval links as the emails carry them, signed here (the tests hold the token secret)."""

from __future__ import annotations

from typing import Any

from signoff.approvals import tokens
from signoff.config import Settings


def plan_link(settings: Settings, workflow_id: str, revision: int = 1) -> str:
    token = tokens.issue_plan_token(settings, workflow_id=workflow_id, revision=revision)
    return f"/api/workflows/{workflow_id}/approve?token={token}"


def step_token(settings: Settings, run: dict[str, Any], attempt: int = 1) -> str:
    """The link token for the step ``run`` (an API run) is at."""
    return tokens.issue_step_token(
        settings,
        workflow_id=run["workflowId"],
        run_id=run["id"],
        conversation_id=run["conversationId"],
        step_index=run["currentStepIndex"],
        attempt=attempt,
    )


def step_link(settings: Settings, run: dict[str, Any], action: str, attempt: int = 1) -> str:
    return f"/api/workflows/resume?token={step_token(settings, run, attempt)}&action={action}"
