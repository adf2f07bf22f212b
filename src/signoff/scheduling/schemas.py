"""The schedule's fire log as the API shows it."""

from __future__ import annotations

from datetime import datetime

from pydantic import RootModel

from signoff.kit.schemas import ApiModel
from signoff.models import FireOutcome


class FireOut(ApiModel):
    due_at: datetime
    handled_at: datetime
    outcome: FireOutcome
    catch_up: bool
    run_id: int | None


class FireLog(RootModel[list[FireOut]]):
    """The schedule's fires, newest first."""
