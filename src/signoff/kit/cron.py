"""Cron expressions: exactly five fields, evaluated by cronsim in the workflow's timezone.

DST follows classic cron (docs/engine.md, Scheduling). A schedule whose minute and hour are
fixed (numbers, or lists of numbers) fires once on both changes: a time that occurs twice fires
at its first occurrence, a time that does not exist fires at the first valid minute after the
gap — which is cronsim's own handling of such schedules. A schedule whose minute or hour is a
wildcard, a range or a step follows the wall clock: it fires in both copies of a repeated hour
and not in a skipped one. cronsim only treats fields that *start* with ``*`` that way, so
wall-clock schedules are evaluated here on naive wall times and mapped to every instant that
shows them.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
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


@cache
def timezone_names() -> list[str]:
    """Every IANA timezone name, sorted (for pickers)."""
    return sorted(_timezones())


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


def is_fixed_time(expression: str) -> bool:
    """True when the minute and hour fields name specific values (no ``*``, range or step)."""
    minute, hour = expression.split()[:2]
    return all(char.isdigit() or char == "," for char in minute + hour)


# The largest shift of a wall clock at a DST change (most zones 1 h; Antarctica/Troll 2 h).
_MAX_SHIFT = timedelta(hours=2)


def _instants(wall: datetime, zone: ZoneInfo) -> list[datetime]:
    """Every UTC instant whose local time is ``wall``: none in a gap, two in a repeated hour."""
    found = set()
    for fold in (0, 1):
        aware = wall.replace(tzinfo=zone, fold=fold)
        if aware.astimezone(UTC).astimezone(zone).replace(tzinfo=None) == wall:
            found.add(aware.astimezone(UTC))
    return sorted(found)


def _no_change_near(instant: datetime, zone: ZoneInfo) -> bool:
    before = (instant - 2 * _MAX_SHIFT).astimezone(zone).utcoffset()
    return before == (instant + 2 * _MAX_SHIFT).astimezone(zone).utcoffset()


def next_fire(expression: str, timezone: str, after: datetime) -> datetime:
    """The first fire time strictly after ``after``, in UTC."""
    zone = ZoneInfo(timezone)
    if is_fixed_time(expression):
        fire: datetime = next(CronSim(expression, after.astimezone(zone)))
        return fire.astimezone(UTC)
    # Wall clock: walk naive wall times from a little before ``after``. In a repeated hour a
    # later wall time can map to an earlier instant, so keep the earliest instant found until
    # the wall times are too far on to map to anything earlier.
    back_off = timedelta(0) if _no_change_near(after, zone) else _MAX_SHIFT
    wall_start = after.astimezone(zone).replace(tzinfo=None) - back_off
    best: datetime | None = None
    anchor: datetime | None = None
    for wall in CronSim(expression, wall_start):
        if anchor is not None and wall - anchor > 2 * _MAX_SHIFT:
            break
        for instant in _instants(wall, zone):
            if instant > after and (best is None or instant < best):
                best = instant
                anchor = anchor or wall
        if anchor is not None and best is not None and _no_change_near(best, zone):
            break  # the usual case: no DST change nearby, the first instant is the answer
    if best is not None:
        return best
    raise ScheduleError("never fires")  # pragma: no cover — cronsim stops after 50 years
