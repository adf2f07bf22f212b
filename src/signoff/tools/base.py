"""What every step tool receives and returns.

A tool never raises into the engine for an expected failure: it returns a :class:`ToolResult`
the agent (and every later step) sees. ``failed`` marks a result that must not be kept — for an
approval-gated tool it must never reach a person — so the engine retries the step instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from signoff.config import Settings
from signoff.db import Database


@dataclass(frozen=True)
class ToolWarning:
    """Something the tool could not do although the step goes on (docs/engine.md, Honest step
    states): the step completes with this warning instead of as a plain success.

    ``code`` is stable for clients (``search_not_configured``, ``search_failed``,
    ``fetch_refused``, ``fetch_failed``, ``image_placeholder``); ``setting`` names the setting
    that would fix it, when one would."""

    code: str
    message: str
    setting: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "setting": self.setting}


@dataclass
class ToolResult:
    text: str
    """What the agent sees as the tool's result (stored in the conversation)."""
    failed: bool = False
    asset_type: str | None = None
    content: str = ""
    """The asset's text (Markdown for outlines and reports, the post for a post)."""
    data: dict[str, Any] = field(default_factory=dict)
    blob: bytes | None = None
    mime_type: str = "text/markdown"
    warnings: list[ToolWarning] = field(default_factory=list)
    """What went wrong without failing the step; stored with the step and shown as a warning."""


@dataclass
class ToolContext:
    """The deps of a step agent: who is running, where, and the step's idempotency key."""

    settings: Settings
    db: Database
    team_id: str
    workflow_id: str
    run_id: int
    step_index: int
    attempt: int

    @property
    def idempotency_key(self) -> str:
        """For side effects outside Signoff: the same key on every retry of this attempt."""
        return f"signoff-{self.run_id}-{self.step_index}-{self.attempt}"
