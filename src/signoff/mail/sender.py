"""Delivering the outbox: claim due rows, send them with no transaction open, record the outcome.

Any number of senders may run, in one process or many: a claim is one conditional
``UPDATE … RETURNING`` (``FOR UPDATE SKIP LOCKED`` on PostgreSQL), so no two hold the same row.
Delivery is at least once: a sender that dies mid-delivery leaves a claim that runs out, and the
row is sent again with the same Message-ID (docs/engine.md, invariant 7; the three steps of a
pass are in docs/architecture.md, Emails).
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import html
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from email.message import EmailMessage
from typing import Any, cast
from urllib.parse import unquote, urlsplit

import aiosmtplib
from sqlalchemy import Table, and_, or_, select, update

from signoff.config import Settings
from signoff.db import Database
from signoff.kit.clock import utc_now
from signoff.kit.logging import redact_tokens
from signoff.mail.service import default_sender, inline_cid
from signoff.models import Asset, MailStatus, OutboxMail

logger = logging.getLogger(__name__)

# Each SMTP operation (connect, each command) gives up after this long. It must stay well
# under mail_claim_seconds, so that a slow send ends before its claim does.
SMTP_TIMEOUT_SECONDS = 30.0
MAX_RETRY_DELAY = timedelta(hours=1)
# Rows claimed per transaction: small enough that a batch is sent long before its claims run
# out, large enough that a backlog does not cost one transaction per mail to claim.
DEFAULT_BATCH_SIZE = 20
# How long a graceful stop lets the mail being delivered finish (an SMTP exchange normally
# takes well under a second) before cancelling it.
STOP_GRACE_SECONDS = 10.0
_MAX_ERROR_LENGTH = 2000
_OUTBOX = cast(Table, OutboxMail.__table__)
_LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})

_TEXT_LINK = re.compile(r"https?://[^\s<>\"']+")
_HREF = re.compile(r"""href\s*=\s*["']([^"']+)["']""", re.IGNORECASE)


@dataclass(frozen=True)
class SmtpOptions:
    """How to reach the SMTP server, taken from ``SIGNOFF_SMTP_URL``."""

    hostname: str
    port: int
    username: str | None
    password: str | None
    use_tls: bool  # smtps://: TLS from the first byte
    start_tls: bool | None  # None: upgrade when the server offers STARTTLS; True: required


def parse_smtp_url(url: str) -> SmtpOptions:
    """``smtp://user:pass@host:587`` or ``smtps://user:pass@host:465``; user and password
    are percent-decoded (a ``@`` in a password is written ``%40``).

    The default ports are the submission ports (587 for smtp://, 465 for smtps://). With
    credentials on smtp://, STARTTLS is required unless the server is on this machine: an
    "upgrade if offered" client sends the password in clear to anyone on the path who strips
    STARTTLS from the server's greeting.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise ValueError("SIGNOFF_SMTP_URL must look like smtp://user:pass@host:587")
    use_tls = parts.scheme == "smtps"
    username = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password is not None else None
    start_tls: bool | None = None
    if use_tls:
        start_tls = False
    elif username is not None and parts.hostname not in _LOOPBACK_HOSTS:
        start_tls = True
    return SmtpOptions(
        hostname=parts.hostname,
        port=parts.port or (465 if use_tls else 587),
        username=username,
        password=password,
        use_tls=use_tls,
        start_tls=start_tls,
    )


def is_permanent_refusal(error: Exception) -> bool:
    """Whether the server refused the recipient or the message for good (a 5xx reply to RCPT or
    DATA, e.g. 550 no such mailbox). Sending it again would be refused again and counts against
    the sender's reputation. A 5xx to anything else (a login the operator can fix) is retried."""
    if isinstance(error, aiosmtplib.SMTPRecipientsRefused):
        return bool(error.recipients) and all(r.code >= 500 for r in error.recipients)
    if isinstance(error, aiosmtplib.SMTPRecipientRefused | aiosmtplib.SMTPDataError):
        return error.code >= 500
    return False


def retry_delay(attempts: int, base_seconds: float) -> timedelta:
    """Wait after the ``attempts``-th failure: base, 2×base, 4×base, …, at most an hour."""
    # Cap the exponent first: 2.0 ** 2000 overflows a float long before the cap matters.
    seconds = base_seconds * 2.0 ** min(attempts - 1, 32)
    return min(timedelta(seconds=seconds), MAX_RETRY_DELAY)


def build_message(
    mail: OutboxMail, settings: Settings, images: Sequence[tuple[str, bytes, str]] = ()
) -> EmailMessage:
    """The MIME message of an outbox row: multipart/alternative, text then HTML, with the
    row's inline images (asset id, bytes, MIME type) related to the HTML part by Content-ID."""
    message = EmailMessage()
    message["From"] = default_sender(settings)
    message["To"] = mail.to_address
    message["Subject"] = mail.subject
    message["Message-ID"] = mail.message_id
    # When the email was written, not when an attempt ran: a retry or a resend after a crash
    # is the same message, and the date says when the event it reports happened.
    message["Date"] = email.utils.format_datetime(mail.created_at)
    # RFC 3834: tells autoresponders (out-of-office) not to answer a machine.
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(mail.text_body)
    message.add_alternative(mail.html_body, subtype="html")
    html_part = message.get_body(preferencelist=("html",))
    assert html_part is not None
    for asset_id, data, mime_type in images:
        maintype, _, subtype = mime_type.partition("/")
        html_part.add_related(
            data, maintype=maintype, subtype=subtype, cid=f"<{inline_cid(settings, asset_id)}>"
        )
    return message


def links_in(mail: OutboxMail) -> list[str]:
    """Every link of an email, once each, in order of appearance (text part first)."""
    links = [link.rstrip(".,;:!?") for link in _TEXT_LINK.findall(mail.text_body)]
    links += [html.unescape(href) for href in _HREF.findall(mail.html_body)]
    return list(dict.fromkeys(link for link in links if link.startswith(("http://", "https://"))))


def _stop_if_cancelled() -> None:
    """Re-raise a cancellation that a library swallowed.

    On Python 3.11, ``asyncio.wait_for`` (used by aiosmtplib for every reply, and by psycopg)
    returns its result instead of raising when the task is cancelled just as the awaited
    operation completes (CPython gh-86296, fixed in 3.12). The task still counts the request,
    so honour it between mails; otherwise a shutdown that cancels the sender could wait on it
    forever.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


def _discard_outcome(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()


class MailSender:
    """Delivers the outbox. Build one per process; run :meth:`run` as a background task."""

    def __init__(
        self, db: Database, settings: Settings, *, batch_size: int = DEFAULT_BATCH_SIZE
    ) -> None:
        self._db = db
        self._settings = settings
        self._batch_size = batch_size
        # Parsed now, so a malformed URL stops the process at startup, not at the first email.
        self._smtp = parse_smtp_url(settings.smtp_url) if settings.smtp_url else None
        self._wake = asyncio.Event()
        self._stopping = False

    def wake(self) -> None:
        """Make :meth:`run` look for due mail now instead of at its next poll.

        Call it after committing a transaction that enqueued mail, from the event loop's
        thread. Senders in other processes are not woken: they find the mail at their next poll.
        """
        self._wake.set()

    async def run(self) -> None:
        """Deliver due mail until cancelled: a pass, then a wait for :meth:`wake` or the poll
        interval. An error in a pass (database unreachable, ...) is logged and the loop goes on;
        cancelling mid-send leaves a claim that expires, so that mail is sent later."""
        while not self._stopping:
            # Cleared before the pass, so a wake() during the pass triggers the next one at once.
            woken = self._wake.is_set()
            self._wake.clear()
            try:
                await self.deliver_due(look_first=not woken)
            except Exception:
                logger.exception("Mail sender pass failed; trying again at the next poll")
            _stop_if_cancelled()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._settings.mail_poll_seconds):
                    await self._wake.wait()

    async def stop(self, task: asyncio.Task[None], grace: float = STOP_GRACE_SECONDS) -> None:
        """Stop ``task`` (running :meth:`run`) gracefully: the mail being delivered finishes and
        is recorded, no other is started, and only after ``grace`` seconds is it cancelled.

        Cancelling mid-delivery would leave a mail the server may have accepted but that is
        still pending here, so it would be sent again (same Message-ID) after its claim ran
        out. The rest of a claimed batch simply waits for its claims to run out.
        """
        self._stopping = True
        self._wake.set()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(grace):
                await asyncio.shield(task)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def deliver_due(self, *, look_first: bool = True) -> int:
        """Deliver every mail that is due now; return how many were sent (or kept).

        Claims and delivers in batches until a batch comes back short, i.e. nothing is due
        any more. A mail that fails is scheduled for later, so it does not come back here.
        ``look_first=False`` (after :meth:`wake`: mail was just committed) skips the read that
        keeps an idle poll from taking SQLite's write lock.
        """
        delivered = 0
        while not self._stopping:
            batch = await self._claim(look_first=look_first)
            look_first = True
            for mail in batch:
                _stop_if_cancelled()
                if self._stopping:
                    break
                delivered += await self._deliver(mail)
            if len(batch) < self._batch_size:
                break
        return delivered

    async def _claim(self, *, look_first: bool) -> list[OutboxMail]:
        now = utc_now()
        due = and_(
            _OUTBOX.c.status == MailStatus.PENDING,
            _OUTBOX.c.next_attempt_at <= now,
            # A claim is valid while now < claimed_until (see _deliver), so it ends exactly then.
            or_(_OUTBOX.c.claimed_until.is_(None), _OUTBOX.c.claimed_until <= now),
        )
        if look_first:
            # Most polls find nothing: look with a read first, so an idle sender never takes
            # SQLite's write lock (every process polls every few seconds).
            async with self._db.read() as session:
                if await session.scalar(select(_OUTBOX.c.id).where(due).limit(1)) is None:
                    return []
        claimed_until = now + timedelta(seconds=self._settings.mail_claim_seconds)
        candidates = (
            select(_OUTBOX.c.id)
            .where(due)
            .order_by(_OUTBOX.c.next_attempt_at, _OUTBOX.c.id)
            .limit(self._batch_size)
            # PostgreSQL: skip rows another sender is claiming right now. SQLite has no row
            # locks and SQLAlchemy leaves the clause out; BEGIN IMMEDIATE serialises instead.
            .with_for_update(skip_locked=True)
        )
        claim = (
            update(_OUTBOX)
            # `due` again on the updated row: under READ COMMITTED, PostgreSQL re-evaluates it
            # on the newest version of a row that a concurrent claim changed meanwhile.
            .where(_OUTBOX.c.id.in_(candidates), due)
            .values(claimed_until=claimed_until)
            .returning(*_OUTBOX.c)
        )
        # A direct transaction (see Database.write_direct): the sender's two writes per batch
        # are on every run's path, like the engine's. Each is one statement: run again after a
        # dead connection, this one claims what is still due (the first claim, had it
        # committed, runs out and its mails are claimed again). The rows become detached
        # objects.
        rows = await self._db.write_direct(
            lambda connection: connection.execute(claim).all(), one_statement=True
        )
        mails = [OutboxMail(**row._mapping) for row in rows]
        return sorted(mails, key=lambda mail: (mail.next_attempt_at, mail.id))

    async def _deliver(self, mail: OutboxMail) -> int:
        """Deliver one claimed mail and record the outcome; 1 if it went out, else 0."""
        if mail.claimed_until is None or utc_now() >= mail.claimed_until:
            # The batch took longer than the claim: another sender may own the row by now.
            logger.warning("Claim on mail %s ran out before sending; leaving it", mail.id)
            return 0
        try:
            if self._smtp is None:
                self._keep(mail)
            else:
                await self._send(mail, self._smtp)
        except Exception as exc:
            await self._record_failure(
                mail, f"{type(exc).__name__}: {exc}", permanent=is_permanent_refusal(exc)
            )
            return 0
        await self._record_delivered(mail)
        return 1

    async def _inline_images(self, mail: OutboxMail) -> list[tuple[str, bytes, str]]:
        if not mail.inline_assets:
            return []
        async with self._db.read() as session:
            rows = await session.execute(
                select(Asset.id, Asset.blob, Asset.mime_type).where(
                    Asset.id.in_(mail.inline_assets)
                )
            )
            return [(asset_id, blob, mime) for asset_id, blob, mime in rows.all() if blob]

    async def _send(self, mail: OutboxMail, smtp: SmtpOptions) -> None:
        message = build_message(mail, self._settings, await self._inline_images(mail))
        sending = asyncio.ensure_future(
            aiosmtplib.send(
                message,
                hostname=smtp.hostname,
                port=smtp.port,
                username=smtp.username,
                password=smtp.password,
                use_tls=smtp.use_tls,
                start_tls=smtp.start_tls,
                timeout=SMTP_TIMEOUT_SECONDS,
            )
        )
        try:
            # asyncio.wait raises our cancellation at once, where a plain await would wait for
            # the SMTP timeout whenever aiosmtplib swallows it (see _stop_if_cancelled).
            await asyncio.wait([sending])
        except asyncio.CancelledError:
            sending.cancel()
            # Should it go on anyway, it ends at its timeout; its outcome matters to nobody
            # then (the claim runs out and the mail is sent again), so mark it retrieved.
            sending.add_done_callback(_discard_outcome)
            raise
        sending.result()  # raises the SMTP error, if any

    def _keep(self, mail: OutboxMail) -> None:
        # Development only (production refuses to start without SMTP). The links are listed
        # without their tokens, like everywhere in the log (kit.logging): a developer opens the
        # mail, links whole, in the dashboard's Mailbox.
        links = [redact_tokens(link) for link in links_in(mail)] or ["(none)"]
        base = self._settings.public_base_url.rstrip("/")
        logger.info(
            "Mail kept for the dev mailbox (no SIGNOFF_SMTP_URL), read it at %s/dashboard/mailbox"
            "\n  To: %s\n  Subject: %s\n  Links:\n%s",
            base,
            mail.to_address,
            mail.subject,
            "\n".join(f"    {link}" for link in links),
        )

    async def _record_delivered(self, mail: OutboxMail) -> None:
        status = MailStatus.KEPT if self._smtp is None else MailStatus.SENT
        # Recorded even if this sender's claim has run out meanwhile: the server accepted the
        # message, which is the truth whoever holds the claim. Only a pending row changes, so a
        # row already recorded by a sender that resent it stays as it is.
        delivered = (
            update(_OUTBOX)
            .where(_OUTBOX.c.id == mail.id, _OUTBOX.c.status == MailStatus.PENDING)
            .values(
                status=status,
                sent_at=utc_now(),
                attempts=_OUTBOX.c.attempts + 1,
                claimed_until=None,
            )
        )
        await self._db.write_direct(
            lambda connection: connection.execute(delivered), one_statement=True
        )

    async def _record_failure(self, mail: OutboxMail, error: str, *, permanent: bool) -> None:
        now = utc_now()
        attempts = mail.attempts + 1
        gave_up = permanent or attempts >= self._settings.mail_max_attempts
        next_attempt_at = now + retry_delay(attempts, self._settings.mail_retry_base_seconds)
        async with self._db.write() as session:
            recorded = await session.scalar(
                update(OutboxMail)
                # Only while this sender still holds its claim: after a takeover the new
                # holder's outcome is the one that counts.
                .where(
                    OutboxMail.id == mail.id,
                    OutboxMail.status == MailStatus.PENDING,
                    OutboxMail.claimed_until == mail.claimed_until,
                )
                .values(
                    status=MailStatus.FAILED if gave_up else MailStatus.PENDING,
                    attempts=attempts,
                    last_error=error[:_MAX_ERROR_LENGTH],
                    next_attempt_at=next_attempt_at,
                    claimed_until=None,
                )
                .returning(OutboxMail.id)
                .execution_options(synchronize_session=False)
            )
        if recorded is None:
            return
        if gave_up:
            logger.error(
                "Gave up on mail %s (%s) to %s after %d attempts%s: %s",
                mail.id,
                mail.kind,
                mail.to_address,
                attempts,
                " (refused for good)" if permanent else "",
                error,
            )
        else:
            logger.warning(
                "Mail %s (%s) to %s failed (attempt %d of %d), next try at %s: %s",
                mail.id,
                mail.kind,
                mail.to_address,
                attempts,
                self._settings.mail_max_attempts,
                next_attempt_at.isoformat(),
                error,
            )
