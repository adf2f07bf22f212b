"""Next-fire computation, checked against a brute-force oracle that walks the minutes.

The oracle applies classic cron's DST rule (SPEC §8) on its own: a schedule with a fixed
minute and hour fires once on both changes (a repeated time at its first occurrence; a skipped
time at the first valid minute after the gap); any other schedule follows the wall clock (both
copies of a repeated hour, nothing in a skipped one).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from signoff.kit.cron import (
    ScheduleError,
    check_timezone,
    describe,
    next_fire,
    normalise_schedule,
)

NAMES = {
    **{n: i for i, n in enumerate(["sun", "mon", "tue", "wed", "thu", "fri", "sat"])},
    **{
        n: i + 1
        for i, n in enumerate(
            ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
        )
    },
}
BOUNDS = [(0, 59), (0, 23), (1, 31), (1, 12), (0, 7)]


def _field(text: str, low: int, high: int) -> set[int]:
    values: set[int] = set()
    for part in text.lower().split(","):
        step = 1
        if "/" in part:
            part, step_text = part.split("/")
            step = int(step_text)
        if part == "*":
            start, end = low, high
        elif "-" in part:
            a, b = part.split("-")
            start, end = int(NAMES.get(a, a)), int(NAMES.get(b, b))
        else:
            start = int(NAMES.get(part, part))
            end = high if "/" in text else start
        values.update(range(start, end + 1, step))
    return values


class Oracle:
    def __init__(self, expression: str) -> None:
        fields = expression.split()
        self.minutes, self.hours, self.days, self.months, dows = (
            _field(f, lo, hi) for f, (lo, hi) in zip(fields, BOUNDS, strict=True)
        )
        self.dows = {d % 7 for d in dows}
        self.dom_any, self.dow_any = fields[2] == "*", fields[4] == "*"
        # Fixed: the minute and hour name specific values (numbers or lists of numbers).
        self.fixed = all(char.isdigit() or char == "," for char in fields[0] + fields[1])

    def matches(self, wall: datetime) -> bool:
        if wall.minute not in self.minutes or wall.hour not in self.hours:
            return False
        if wall.month not in self.months:
            return False
        dom = wall.day in self.days
        dow = (wall.isoweekday() % 7) in self.dows
        if self.dom_any or self.dow_any:
            return dom and dow
        return dom or dow  # both restricted: classic cron matches either

    def fires(self, tz: ZoneInfo, start: datetime, end: datetime) -> list[datetime]:
        """Every fire strictly after ``start`` up to ``end``, walking UTC minutes."""
        out: list[datetime] = []
        moment = start.replace(second=0, microsecond=0) + timedelta(minutes=1)
        previous_wall = (moment - timedelta(minutes=1)).astimezone(tz).replace(tzinfo=None)
        while moment <= end:
            local = moment.astimezone(tz)
            wall = local.replace(tzinfo=None)
            if self.fixed:
                if wall - previous_wall > timedelta(minutes=1):
                    # Spring forward: times in the gap fire at the first valid minute after it.
                    skipped = previous_wall + timedelta(minutes=1)
                    gap_fires = False
                    while skipped < wall:
                        gap_fires = gap_fires or self.matches(skipped)
                        skipped += timedelta(minutes=1)
                    if gap_fires or self.matches(wall):
                        out.append(moment)
                elif self.matches(wall) and local.fold == 0:
                    out.append(moment)  # a repeated time fires at its first occurrence
            elif self.matches(wall):
                out.append(moment)
            previous_wall = wall
            moment += timedelta(minutes=1)
        return out


def computed(expression: str, tz: str, start: datetime, end: datetime) -> list[datetime]:
    out = []
    moment = next_fire(expression, tz, start)
    while moment <= end:
        out.append(moment)
        moment = next_fire(expression, tz, moment)
    return out


CASES = [
    # DST in Europe/Paris (last Sundays of March and October) and America/New_York.
    ("30 2 * * *", "Europe/Paris", datetime(2026, 3, 27, tzinfo=UTC), 4),
    ("30 2 * * *", "Europe/Paris", datetime(2026, 10, 23, tzinfo=UTC), 4),
    ("0 2 * * *", "Europe/Paris", datetime(2026, 3, 28, tzinfo=UTC), 2),
    ("*/15 2 * * *", "Europe/Paris", datetime(2026, 10, 24, tzinfo=UTC), 2),
    ("*/20 * * * *", "Europe/Paris", datetime(2026, 3, 29, tzinfo=UTC), 1),
    ("0 * * * *", "Europe/Paris", datetime(2026, 10, 25, tzinfo=UTC), 1),
    ("30 1 * * *", "America/New_York", datetime(2026, 11, 1, tzinfo=UTC), 2),
    ("30 2 * * *", "America/New_York", datetime(2026, 3, 7, tzinfo=UTC), 3),
    ("15 1-2 * * *", "America/New_York", datetime(2026, 10, 31, tzinfo=UTC), 3),
    ("0 9 * * MON", "America/New_York", datetime(2026, 3, 1, tzinfo=UTC), 21),
    # Month ends and day-of-week / day-of-month combinations.
    ("0 12 31 * *", "UTC", datetime(2026, 1, 1, tzinfo=UTC), 100),
    ("0 0 29 2 *", "UTC", datetime(2028, 2, 1, tzinfo=UTC), 40),
    ("0 8 1,15 * MON", "Europe/Paris", datetime(2026, 1, 1, tzinfo=UTC), 62),
    ("0 8 * * SUN,SAT", "UTC", datetime(2026, 5, 1, tzinfo=UTC), 20),
    ("0 18 28-31 * *", "UTC", datetime(2026, 1, 20, tzinfo=UTC), 45),
    ("45 23 * JAN,DEC FRI", "Asia/Tokyo", datetime(2026, 12, 15, tzinfo=UTC), 30),
    ("0,30 2 * * *", "Europe/Paris", datetime(2026, 10, 24, tzinfo=UTC), 2),
    ("0-59/30 2 * * *", "America/New_York", datetime(2026, 11, 1, tzinfo=UTC), 1),
]


@pytest.mark.parametrize(("expression", "tz", "start", "days"), CASES)
def test_next_fire_matches_the_oracle(expression: str, tz: str, start: datetime, days: int) -> None:
    end = start + timedelta(days=days)
    expected = Oracle(expression).fires(ZoneInfo(tz), start, end)
    assert computed(expression, tz, start, end) == expected
    assert expected, "a case with no fire proves nothing"


def test_dst_rule_examples() -> None:
    paris = "Europe/Paris"
    # 02:30 does not exist on 29 March 2026: it fires at 03:00 local (01:00 UTC).
    assert next_fire("30 2 * * *", paris, datetime(2026, 3, 28, 23, 0, tzinfo=UTC)) == datetime(
        2026, 3, 29, 1, 0, tzinfo=UTC
    )
    # 02:30 happens twice on 25 October 2026: it fires once, at the first (00:30 UTC).
    first = next_fire("30 2 * * *", paris, datetime(2026, 10, 24, 23, 0, tzinfo=UTC))
    assert first == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
    assert next_fire("30 2 * * *", paris, first) == datetime(2026, 10, 26, 1, 30, tzinfo=UTC)
    # A step follows the wall clock: both copies of the repeated hour, none in the gap.
    night = (datetime(2026, 10, 24, 23, 0, tzinfo=UTC), datetime(2026, 10, 25, 3, 0, tzinfo=UTC))
    assert len(computed("*/30 2 * * *", paris, *night)) == 4
    spring = (datetime(2026, 3, 28, 23, 0, tzinfo=UTC), datetime(2026, 3, 29, 3, 0, tzinfo=UTC))
    assert computed("*/30 2 * * *", paris, *spring) == []


def test_validation_and_description() -> None:
    assert normalise_schedule("  0   9 * *  MON ") == "0 9 * * MON"
    for bad in ("61 * * * *", "* * *", "0 9 * * 1 2026", "@daily", "0 0 31 2 *", ""):
        with pytest.raises(ScheduleError):
            normalise_schedule(bad)
    assert check_timezone("Europe/Paris") == "Europe/Paris"
    for bad in ("Mars/Olympus", "../etc/passwd", "", "utc+2"):
        with pytest.raises(ScheduleError):
            check_timezone(bad)
    assert describe("0 9 * * 1") == "At 09:00, only on Monday"
    assert describe("*/5 * * * *") == "Every 5 minutes"
