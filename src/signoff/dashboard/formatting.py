"""Template filters: Markdown made safe, durations, times and statuses in words, and the
word diff between two versions of an output."""

from __future__ import annotations

import difflib
import re
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import nh3
from markdown_it import MarkdownIt
from markupsafe import Markup

# Raw HTML in the Markdown is shown as text, and the result is sanitised again (nh3), because
# reports are written by a model from web pages: untrusted text. No <img>: a page of ours
# never loads anything from another origin.
_markdown = MarkdownIt("commonmark", {"html": False}).enable("table")
_SAFE_TAGS = nh3.ALLOWED_TAGS - {"img", "area", "map"}


def markdown(text: str | None) -> Markup:
    return Markup(nh3.clean(_markdown.render(text or ""), tags=_SAFE_TAGS))  # noqa: S704 (sanitised)


def duration(started: datetime | None, finished: datetime | None) -> str:
    """``1.2 s``, ``3 min 4 s``; empty when the step has not both started and finished."""
    if started is None or finished is None:
        return ""
    seconds = max(0.0, (finished - started).total_seconds())
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes, rest = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {rest} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def when(moment: datetime | None, timezone: str | None = None) -> str:
    """``2026-11-30 09:00 UTC``; with a workflow's timezone, its wall clock first:
    ``2026-11-30 09:00 Europe/Paris (08:00 UTC)``."""
    if moment is None:
        return ""
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    utc = moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    if not timezone or timezone == "UTC":
        return utc
    local = moment.astimezone(ZoneInfo(timezone))
    # The UTC time alone when it falls on the same date, else with its date.
    same_day = local.date() == moment.astimezone(UTC).date()
    return f"{local:%Y-%m-%d %H:%M} {timezone} ({utc[11:] if same_day else utc})"


def local_time(moment: datetime | None) -> Markup:
    """A ``<time>`` the browser shows in the viewer's timezone, with how long ago
    (``static/app.js``); without JavaScript it reads in UTC (:func:`when`)."""
    if moment is None:
        return Markup("")
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return Markup('<time datetime="{}" data-local>{}</time>').format(
        moment.astimezone(UTC).isoformat(), when(moment)
    )


def words(status: str) -> str:
    """A status as people say it: ``awaiting_approval`` → ``awaiting approval``."""
    return str(status).replace("_", " ")


_TOKENS = re.compile(r"\s+|[^\s]+")


def diff(before: str | None, after: str | None) -> list[tuple[str, str]]:
    """Word by word, what changed from ``before`` to ``after``: ``(kind, text)`` pieces, kind
    ``same``, ``removed`` or ``added`` (difflib; the template escapes the text). Whitespace is
    kept as its own pieces, so the pieces put together give back each version exactly."""
    old = _TOKENS.findall(before or "")
    new = _TOKENS.findall(after or "")
    pieces: list[tuple[str, str]] = []
    matcher = difflib.SequenceMatcher(a=old, b=new, autojunk=False)
    for op, a1, a2, b1, b2 in matcher.get_opcodes():
        if op == "equal":
            pieces.append(("same", "".join(old[a1:a2])))
            continue
        if a2 > a1:
            pieces.append(("removed", "".join(old[a1:a2])))
        if b2 > b1:
            pieces.append(("added", "".join(new[b1:b2])))
    return pieces


def usd(cost: float | None) -> str:
    """An estimated cost: "≈ $0.0123" (cents and below shown to a hundredth of a cent);
    empty when the model's price is not known."""
    if cost is None:
        return ""
    return f"≈ ${cost:,.2f}" if cost >= 1 else f"≈ ${cost:.4f}"


def channel(value: str) -> str:
    """How a decision reached Signoff, in words."""
    return {"email_link": "email link", "api": "the API", "dashboard": "the dashboard"}.get(
        value, value
    )


# The questions destructive forms ask: in the page (``data-confirm``, asked by static/app.js)
# and on the confirm page a browser without JavaScript gets (pages.confirm_page). One wording
# for both.


def archive_question(title: str) -> str:
    return (
        f"Archive “{title}”? It will no longer run, by hand or on schedule, and this cannot "
        "be undone."
    )


def stop_question(run_number: int) -> str:
    return f"Stop run {run_number}? The step in progress is abandoned and nothing after it runs."


def remove_member_question(who: str) -> str:
    return f"Remove {who} from the team? They lose access to its workflows at once."
