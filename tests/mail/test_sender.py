"""The sender's parts that need no database, its resilience, and the templates' contract."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiosmtplib
import jinja2
import pytest

from signoff.config import Settings
from signoff.db import Database
from signoff.kit.clock import FrozenClock
from signoff.mail.sender import (
    MailSender,
    SmtpOptions,
    parse_smtp_url,
    retry_delay,
)
from signoff.mail.service import Button, enqueue, render
from signoff.models import Base, MailStatus
from signoff.runtime import Runtime, offline_model
from tests.support.mailbox import hrefs
from tests.support.outbox import claimed_at, load, stop, with_smtp, write_notice
from tests.support.smtp import FakeSmtpServer, serving_smtp
from tests.support.waiting import wait_until


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("smtp://127.0.0.1:2525", SmtpOptions("127.0.0.1", 2525, None, None, False, None)),
        (
            "smtp://me%40acme.example:p%40ss%3Aw0rd@mail.acme.example",
            SmtpOptions("mail.acme.example", 587, "me@acme.example", "p@ss:w0rd", False, True),
        ),
        ("smtp://u:p@localhost:25", SmtpOptions("localhost", 25, "u", "p", False, None)),
        ("smtps://u:p@mail.example", SmtpOptions("mail.example", 465, "u", "p", True, False)),
    ],
)
def test_smtp_url(url: str, expected: SmtpOptions) -> None:
    assert parse_smtp_url(url) == expected


def test_a_malformed_smtp_url_stops_the_sender_at_once(settings: Settings) -> None:
    with pytest.raises(ValueError, match="SIGNOFF_SMTP_URL"):
        MailSender(
            Database.from_url("sqlite+aiosqlite://"),
            settings.model_copy(update={"smtp_url": "smtp://:25"}),
        )


def test_retry_delay_doubles_up_to_an_hour() -> None:
    assert [retry_delay(n, 5).total_seconds() for n in range(1, 6)] == [5, 10, 20, 40, 80]
    assert retry_delay(12, 5) == timedelta(hours=1)
    assert retry_delay(5000, 5) == timedelta(hours=1)


def test_templates_refuse_a_missing_value() -> None:
    with pytest.raises(jinja2.UndefinedError):
        render("notice", {"paragraphs": []})


def test_notice_without_a_button_has_no_link() -> None:
    text, html = render("notice", {"heading": "Done", "paragraphs": ["All steps completed."]})
    assert "http" not in text
    assert "href" not in html
    assert "All steps completed." in text
    assert "All steps completed." in html


def test_the_layouts_render_every_button_with_its_link() -> None:
    buttons = [
        Button(label="Approve", url="https://signoff.example/a?token=t1&action=approve"),
        Button(label="Request changes", url="https://signoff.example/a?token=t1&action=reject"),
    ]
    text, html = render("notice", {"heading": "Decide", "paragraphs": [], "buttons": buttons})
    assert "Approve:\nhttps://signoff.example/a?token=t1&action=approve\n" in text
    assert "Request changes:\nhttps://signoff.example/a?token=t1&action=reject\n" in text
    assert hrefs(html) == [button["url"] for button in buttons] * 2  # buttons, then links
    assert text.index("Approve:") < text.index("Request changes:")


async def test_enqueue_refuses_header_injection(
    database: Database, settings: Settings, clock: FrozenClock
) -> None:
    async with database.write() as session:
        with pytest.raises(ValueError, match="not an email address"):
            await enqueue(
                session,
                settings,
                kind="notice",
                to="a@example.com\r\nBcc: everyone@example.com",
                subject="x",
                template="notice",
                context={"heading": "x", "paragraphs": []},
                team_id=None,
            )


async def test_a_cancelled_sender_stops_at_once_even_if_smtp_ignores_it(
    database: Database,
    settings: Settings,
    clock: FrozenClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # On Python 3.11, aiosmtplib's asyncio.wait_for swallows a cancellation that arrives as a
    # reply does (CPython gh-86296; about 1 cancel in 10 during a connect, measured here) and
    # goes on until the SMTP timeout, 30 s. That race is made certain here, to show that the
    # sender stops at once anyway: an application shutdown waits for it.
    async def send_ignoring_one_cancel(*_args: Any, **_kwargs: Any) -> None:
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(3600)
        await asyncio.sleep(3600)

    monkeypatch.setattr(aiosmtplib, "send", send_ignoring_one_cancel)
    settings = settings.model_copy(update={"smtp_url": "smtp://127.0.0.1:2525"})
    mail = await write_notice(database, settings)
    sending = asyncio.create_task(MailSender(database, settings).deliver_due())
    try:
        await wait_until(
            lambda: claimed_at(database, mail.id), "the sender to claim the mail", interval=0.01
        )
        await stop(sending)
    finally:
        for task in asyncio.all_tasks() - {asyncio.current_task()}:
            task.cancel()
    stored = await load(database, mail.id)
    assert (stored.status, stored.attempts) == (MailStatus.PENDING, 0)  # sent after its claim


async def test_run_survives_a_failing_pass(
    tmp_path: Path,
    settings: Settings,
    clock: FrozenClock,
    smtp_server: FakeSmtpServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A database with no tables yet: every pass fails until they exist.
    db = Database.from_url(f"sqlite+aiosqlite:///{tmp_path}/late.db")
    settings = with_smtp(settings, smtp_server, mail_poll_seconds=3600)
    sender = MailSender(db, settings)
    task = asyncio.create_task(sender.run())
    try:
        await wait_until(lambda: "Mail sender pass failed" in caplog.text)
        async with db.engine.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)
        mail = await write_notice(db, settings)
        sender.wake()
        await wait_until(lambda: len(smtp_server.messages) == 1)
        assert smtp_server.message_ids == [mail.message_id]
    finally:
        await stop(task)
        await db.dispose()


class HeldSmtpServer(FakeSmtpServer):
    """Holds every message at DATA until released: a delivery in flight, for as long as the
    test wants."""

    def __init__(self) -> None:
        super().__init__()
        self.receiving = threading.Event()
        self.release = threading.Event()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.receiving.set()
        await asyncio.get_running_loop().run_in_executor(None, self.release.wait, 10)
        return await super().handle_DATA(server, session, envelope)


async def test_a_graceful_stop_lets_the_mail_in_flight_finish(
    database: Database, settings: Settings
) -> None:
    with serving_smtp(HeldSmtpServer()) as server:
        try:
            settings = with_smtp(settings, server)
            mail = await write_notice(database, settings)
            runtime = Runtime(settings, database, offline_model())
            await runtime.start()
            assert await asyncio.to_thread(server.receiving.wait, 5)
            stopping = asyncio.create_task(runtime.stop())
            # A negative check (no event says "the stop would have ended by now"): the stop is
            # under way and everything else is down, and it still waits for the delivery.
            await asyncio.sleep(0.2)
            assert not stopping.done(), "the stop did not wait for the delivery in flight"
            server.release.set()
            await asyncio.wait_for(stopping, timeout=10)
        finally:
            server.release.set()  # before the server stops: its handler is waiting for it
    # Delivered once and recorded: not left pending, to be sent again after its claim.
    stored = await load(database, mail.id)
    assert (stored.status, stored.attempts) == (MailStatus.SENT, 1)
    assert server.message_ids == [mail.message_id]
