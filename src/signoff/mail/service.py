"""Writing emails: render the templates and add the outbox row to the caller's transaction.

Nothing here talks to a mail server: :func:`enqueue` only adds a row, so an email commits or
rolls back with the change that causes it; :mod:`signoff.mail.sender` delivers it after the commit.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypedDict
from urllib.parse import urlsplit

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from sqlalchemy.ext.asyncio import AsyncSession

from signoff.config import Settings
from signoff.models import OutboxMail

TEMPLATES_DIR = Path(__file__).parent / "templates"
"""``{name}.txt`` and ``{name}.html`` for every email, both extending the shared layouts
``_base.txt`` / ``_base.html``. ``notice`` is the generic one to copy."""

# The column's length; longer subjects (titles come from an LLM) are cut, not refused.
MAX_SUBJECT_LENGTH = 300

_MAIL_WRITTEN = "signoff.mail_written"


class Button(TypedDict):
    """A call to action the layouts render as a button plus its plain link.

    A template may set ``buttons`` (a list of these), or the caller may pass it in the context.
    The plain link follows every button, so the text part and mail clients that block styling
    still show every link.
    """

    label: str
    url: str


# StrictUndefined: a misspelt context key fails the transaction that writes the email instead
# of sending a mail with a hole in it. HTML is autoescaped (titles and outputs come from users
# and the LLM); the text part is not, so links and punctuation stay as they are.
_templates = Environment(
    loader=FileSystemLoader(TEMPLATES_DIR),
    autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
    auto_reload=False,
)


def render(template: str, context: Mapping[str, Any]) -> tuple[str, str]:
    """Render ``templates/{template}.txt`` and ``.html`` with ``context``: ``(text, html)``."""
    text = _templates.get_template(f"{template}.txt").render(context)
    html = _templates.get_template(f"{template}.html").render(context)
    return text, html


def mail_host(settings: Settings) -> str:
    """The domain of our Message-IDs and default sender: the host of the public base URL."""
    host = urlsplit(settings.public_base_url).hostname or "localhost"
    # An IPv6 literal is only valid in an address or Message-ID inside brackets (RFC 5322).
    return f"[{host}]" if ":" in host else host


def default_sender(settings: Settings) -> str:
    """``SIGNOFF_MAIL_FROM``, or ``Signoff <signoff@host-of-base-url>`` when it is unset."""
    return settings.mail_from or f"Signoff <signoff@{mail_host(settings)}>"


def inline_cid(settings: Settings, asset_id: str) -> str:
    """The Content-ID of an asset shown inline (``<img src="cid:…">`` in a template)."""
    return f"asset-{asset_id}@{mail_host(settings)}"


def new_message_id(settings: Settings) -> str:
    """A globally unique Message-ID, fixed when the row is written so a resend repeats it."""
    return f"<{uuid.uuid4().hex}@{mail_host(settings)}>"


def compose(
    settings: Settings,
    *,
    kind: str,
    to: str,
    subject: str,
    template: str,
    context: dict[str, Any],
    team_id: str | None,
    inline_assets: Sequence[str] = (),
) -> dict[str, Any]:
    """Render an email: the column values of its outbox row (the rest take their defaults).

    ``kind`` names the email for the dev mailbox and logs (``plan_approval``, ...);
    ``subject`` is also given to the templates (the HTML ``<title>``); ``inline_assets`` are
    images (asset ids) the HTML shows with ``cid:`` links (:func:`inline_cid`).
    """
    to = to.strip()
    # Header injection guard: the address and subject become headers of the message.
    if not to or "@" not in to or "\r" in to or "\n" in to:
        raise ValueError(f"not an email address: {to!r}")
    subject = re.sub(r"\s+", " ", subject).strip()[:MAX_SUBJECT_LENGTH]
    text_body, html_body = render(template, {**context, "subject": subject})
    return {
        "team_id": team_id,
        "kind": kind,
        "to_address": to,
        "subject": subject,
        "text_body": text_body,
        "html_body": html_body,
        "message_id": new_message_id(settings),
        "inline_assets": list(inline_assets),
    }


async def enqueue(
    session: AsyncSession,
    settings: Settings,
    *,
    kind: str,
    to: str,
    subject: str,
    template: str,
    context: dict[str, Any],
    team_id: str | None,
    inline_assets: Sequence[str] = (),
) -> OutboxMail:
    """Render an email (:func:`compose`) and add it to the outbox in the caller's transaction;
    never commits.

    The email commits or rolls back with the caller's change: a plan saved without its approval
    email, or an approval email for a plan that was never saved, cannot happen. The row is
    flushed, so its id is known, and is delivered once the caller's transaction commits;
    ``Database.write`` then wakes the sender (:func:`wrote_mail`).
    """
    mail = OutboxMail(
        **compose(
            settings,
            kind=kind,
            to=to,
            subject=subject,
            template=template,
            context=context,
            team_id=team_id,
            inline_assets=inline_assets,
        )
    )
    session.add(mail)
    session.info[_MAIL_WRITTEN] = True
    await session.flush()
    return mail


def wrote_mail(session_info: dict[Any, Any]) -> bool:
    """Whether a committed session added outbox rows (the sender can deliver them now)."""
    return bool(session_info.get(_MAIL_WRITTEN))
