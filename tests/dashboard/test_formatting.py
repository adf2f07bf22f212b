"""Template filters: times in a workflow's timezone, durations, statuses in words."""

from __future__ import annotations

from datetime import UTC, datetime

from signoff.dashboard.formatting import duration, when, words


def test_when_shows_the_workflows_wall_clock_and_utc() -> None:
    moment = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
    assert when(moment) == "2026-11-30 08:00 UTC"
    assert when(moment, "UTC") == "2026-11-30 08:00 UTC"
    assert when(moment, "Europe/Paris") == "2026-11-30 09:00 Europe/Paris (08:00 UTC)"
    # Across midnight the UTC side keeps its date.
    late = datetime(2026, 11, 30, 23, 30, tzinfo=UTC)
    assert when(late, "Asia/Tokyo") == "2026-12-01 08:30 Asia/Tokyo (2026-11-30 23:30 UTC)"
    assert when(None, "Europe/Paris") == ""


def test_durations_and_words() -> None:
    start = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
    assert duration(start, start.replace(second=1, microsecond=500000)) == "1.5 s"
    assert duration(start, start.replace(minute=3, second=4)) == "3 min 4 s"
    assert duration(start, None) == ""
    assert words("awaiting_approval") == "awaiting approval"
