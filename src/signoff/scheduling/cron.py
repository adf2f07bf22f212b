"""Cron expressions: exactly five fields, evaluated by cronsim in the workflow's timezone.

cronsim follows classic cron's DST rules (SPEC §8): a fixed-time schedule fires once on both
changes; wildcard and step hours/minutes follow the wall clock.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from zoneinfo import ZoneInfo, available_timezones

from cron_descriptor import Options, get_description
from cronsim import CronSim, CronSimError

MAX_SCHEDULE_LENGTH = 120


class ScheduleError(ValueError):
    """An invalid schedule or timezone; the message says why, for a person."""


def normalise_schedule(expression: str) -> str:
    """Validate a 5-field cron expression and return it with single spaces; raise ScheduleError."""
    fields = expression.split()
    if len(fields) != 5:
        raise ScheduleError(
            "must have exactly 5 fields (minute hour day-of-month month day-of-week), "
            f"got {len(fields)}"
        )
    normalised = " ".join(fields)
    if len(normalised) > MAX_SCHEDULE_LENGTH:
        raise ScheduleError(f"must be at most {MAX_SCHEDULE_LENGTH} characters")
    try:
        CronSim(normalised, datetime(2000, 1, 1, tzinfo=UTC))
    except CronSimError as exc:
        raise ScheduleError(f"is not a valid cron expression: {exc}") from None
    return normalised


@cache
def _timezones() -> frozenset[str]:
    return frozenset(available_timezones())


def check_timezone(name: str) -> str:
    """Return ``name`` if it is an IANA timezone name (e.g. ``Europe/Paris``); else raise."""
    if name not in _timezones():
        raise ScheduleError(f"'{name}' is not an IANA timezone name such as 'Europe/Paris'")
    return name


def describe(expression: str) -> str:
    """A sentence for people, e.g. ``At 09:00, only on Monday``."""
    options = Options()
    options.use_24hour_time_format = True
    options.verbose = False
    return str(get_description(expression, options))


def next_fire(expression: str, timezone: str, after: datetime) -> datetime:
    """The first fire time strictly after ``after``, in UTC."""
    local = after.astimezone(ZoneInfo(timezone))
    fire: datetime = next(CronSim(expression, local))
    return fire.astimezone(UTC)
