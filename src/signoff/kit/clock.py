"""The one clock.

Everything that needs "now" calls :func:`utc_now`, so tests can freeze and move time
(token expiry, claims, schedules) instead of sleeping.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta


def _system_now() -> datetime:
    return datetime.now(UTC)


_now: Callable[[], datetime] = _system_now


def utc_now() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return _now()


class FrozenClock:
    """A clock that stands still until moved; install it with :func:`use_clock`."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("FrozenClock needs a timezone-aware start")
        self._current = start.astimezone(UTC)

    def __call__(self) -> datetime:
        return self._current

    def advance(self, delta: timedelta) -> datetime:
        self._current += delta
        return self._current

    def set(self, moment: datetime) -> None:
        self._current = moment.astimezone(UTC)


def use_clock(clock: Callable[[], datetime] | None) -> None:
    """Replace the clock (None restores the system clock). For tests and benchmarks."""
    global _now
    _now = clock if clock is not None else _system_now
