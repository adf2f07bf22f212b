"""Bodies of the schedule endpoints."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field, field_validator

from signoff.kit.schemas import ApiInput, ApiModel
from signoff.models import FireOutcome
from signoff.workflows.schemas import check_schedule_field, check_timezone_field


class ScheduleChange(ApiInput):
    """Send ``schedule: null`` (or "") to remove the schedule; leave a field out to keep it."""

    schedule: str | None = Field(default=None, description="5-field cron, or null to remove.")
    timezone: str | None = Field(default=None, description="IANA timezone of the schedule.")

    _check_schedule = field_validator("schedule")(check_schedule_field)

    @field_validator("timezone")
    @classmethod
    def _check_timezone(cls, value: str | None) -> str | None:
        return None if value is None else check_timezone_field(value)


class FireOut(ApiModel):
    due_at: datetime
    handled_at: datetime
    outcome: FireOutcome
    catch_up: bool
    run_id: int | None
