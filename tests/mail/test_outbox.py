"""The outbox end to end, over a real SMTP server: transactional writes, delivery, retries,
concurrent senders and crashes (ENGINE.md, invariant 7)."""

from __future__ import annotations

import asyncio
import logging
import re
import socket
from collections import Counter
from datetime import timedelta

import aiosmtplib
import pytest
from fastapi import FastAPI

from signoff.config import Settings
from signoff.db import Database
from signoff.kit.clock import FrozenClock
from signoff.mail.sender import MailSender, is_permanent_refusal
from signoff.mail.service import enqueue
from signoff.models import MailStatus
from tests.support.mailbox import hrefs
from tests.support.outbox import (
    LINK,
    RECIPIENT,
    all_mails,
    claimed_at,
    load,
    make_team,
    stop,
    with_smtp,
    write_notice,
)
from tests.support.ports import free_port
from tests.support.smtp import FakeSmtpServer
from tests.support.waiting import wait_until

pytestmark = pytest.mark.postgres


async def test_a_mail_is_delivered_over_smtp_as_written(
    database: Database, settings: Settings, clock: FrozenClock, smtp_server: FakeSmtpServer
) -> None:
    settings = with_smtp(settings, smtp_server)
    team_id = await make_team(database)
    mail = await write_notice(
        database, settings, subject="Approve:\n <Launch> & go", team_id=team_id
    )
    assert re.fullmatch(r"<[0-9a-f]{32}@testserver>", mail.message_id)

    assert await MailSender(database, settings).deliver_due() == 1

    assert smtp_server.recipients == [[RECIPIENT]]
    [message] = smtp_server.messages
    assert message["From"] == "Signoff <signoff@testserver>"
    assert message["To"] == RECIPIENT
    assert message["Subject"] == "Approve: <Launch> & go"  # folded onto one line, not escaped
    assert message["Message-ID"] == mail.message_id
    assert message["Date"].datetime == clock()
    assert message.get_content_type() == "multipart/alternative"
    text_part, html_part = message.get_body(("plain",)), message.get_body(("html",))
    assert text_part is not None
    assert html_part is not None
    # Lines arrive with the wire's CRLF endings.
    text = text_part.get_content().replace("\r\n", "\n")
    html = html_part.get_content()
    assert "A plan is waiting for you" in text
    assert f"Approve & Activate:\n{LINK}\n" in text
    assert text.rstrip().endswith("Sent by Signoff")
    assert hrefs(html) == [LINK, LINK]  # the button and the plain link under it
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script>" not in html
    assert "Sent by Signoff" in html

    stored = await load(database, mail.id)
    assert (stored.status, stored.attempts, stored.sent_at) == (MailStatus.SENT, 1, clock())
    assert stored.team_id == team_id
    assert stored.claimed_until is None
    assert await MailSender(database, settings).deliver_due() == 0
    assert len(smtp_server.messages) == 1


async def test_mail_from_setting_is_the_sender(
    database: Database, settings: Settings, clock: FrozenClock, smtp_server: FakeSmtpServer
) -> None:
    settings = with_smtp(settings, smtp_server, mail_from="Acme Ops <ops@acme.example>")
    await write_notice(database, settings)
    await MailSender(database, settings).deliver_due()
    assert smtp_server.messages[0]["From"] == "Acme Ops <ops@acme.example>"


async def test_a_rolled_back_transaction_leaves_no_mail(
    database: Database, settings: Settings, clock: FrozenClock, smtp_server: FakeSmtpServer
) -> None:
    settings = with_smtp(settings, smtp_server)
    sender = MailSender(database, settings)

    async def change_state_and_fail() -> None:
        async with database.write() as session:
            await enqueue(
                session,
                settings,
                kind="notice",
                to=RECIPIENT,
                subject="Never",
                template="notice",
                context={"heading": "Never", "paragraphs": []},
                team_id=None,
            )
            # Not visible to anyone (a sender included) before the commit.
            assert await all_mails(database) == []
            raise RuntimeError("state change failed")

    with pytest.raises(RuntimeError, match="state change failed"):
        await change_state_and_fail()

    assert await all_mails(database) == []
    assert await sender.deliver_due() == 0
    assert smtp_server.messages == []


async def test_a_failing_server_is_retried_with_backoff_and_sent_once(
    database: Database, settings: Settings, clock: FrozenClock, smtp_server: FakeSmtpServer
) -> None:
    settings = with_smtp(settings, smtp_server, mail_retry_base_seconds=10, mail_max_attempts=5)
    sender = MailSender(database, settings)
    smtp_server.fail_next(2)
    mail = await write_notice(database, settings)

    assert await sender.deliver_due() == 0
    stored = await load(database, mail.id)
    assert (stored.status, stored.attempts) == (MailStatus.PENDING, 1)
    assert stored.last_error is not None
    assert "451" in stored.last_error
    assert stored.next_attempt_at == clock() + timedelta(seconds=10)
    assert stored.claimed_until is None

    clock.advance(timedelta(seconds=9))
    assert await sender.deliver_due() == 0
    assert smtp_server.refused == 1  # not retried before next_attempt_at

    clock.advance(timedelta(seconds=1))
    assert await sender.deliver_due() == 0
    assert smtp_server.refused == 2
    stored = await load(database, mail.id)
    assert stored.attempts == 2
    assert stored.next_attempt_at == clock() + timedelta(seconds=20)  # doubled

    clock.advance(timedelta(seconds=19))
    assert await sender.deliver_due() == 0
    assert smtp_server.refused == 2

    clock.advance(timedelta(seconds=1))
    assert await sender.deliver_due() == 1
    assert smtp_server.message_ids == [mail.message_id]
    stored = await load(database, mail.id)
    assert (stored.status, stored.attempts, stored.sent_at) == (MailStatus.SENT, 3, clock())

    clock.advance(timedelta(hours=2))
    assert await sender.deliver_due() == 0
    assert smtp_server.message_ids == [mail.message_id]


async def test_after_the_last_attempt_a_mail_is_failed_and_never_sent(
    database: Database,
    settings: Settings,
    clock: FrozenClock,
    smtp_server: FakeSmtpServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = with_smtp(settings, smtp_server, mail_retry_base_seconds=1000, mail_max_attempts=4)
    sender = MailSender(database, settings)
    smtp_server.fail_next(100)
    mail = await write_notice(database, settings)

    # 1000 s, 2000 s, then 4000 s capped at an hour.
    for attempt, delay in enumerate([1000, 2000, 3600], start=1):
        assert await sender.deliver_due() == 0
        stored = await load(database, mail.id)
        assert (stored.status, stored.attempts) == (MailStatus.PENDING, attempt)
        assert stored.next_attempt_at == clock() + timedelta(seconds=delay)
        clock.set(stored.next_attempt_at)

    assert await sender.deliver_due() == 0
    stored = await load(database, mail.id)
    assert (stored.status, stored.attempts) == (MailStatus.FAILED, 4)
    assert stored.claimed_until is None
    assert any(
        record.levelno == logging.ERROR and "Gave up on mail" in record.getMessage()
        for record in caplog.records
    )

    clock.advance(timedelta(days=2))
    smtp_server.fail_next(0)
    assert await sender.deliver_due() == 0
    assert smtp_server.refused == 4
    assert smtp_server.messages == []


async def test_a_refusal_for_good_fails_the_mail_at_once(
    database: Database, settings: Settings, clock: FrozenClock, smtp_server: FakeSmtpServer
) -> None:
    settings = with_smtp(settings, smtp_server, mail_retry_base_seconds=10, mail_max_attempts=5)
    sender = MailSender(database, settings)
    smtp_server.fail_next(1, "550 5.1.1 No such mailbox here")
    mail = await write_notice(database, settings)

    assert await sender.deliver_due() == 0
    stored = await load(database, mail.id)
    assert (stored.status, stored.attempts) == (MailStatus.FAILED, 1)
    assert stored.last_error is not None
    assert "550" in stored.last_error
    clock.advance(timedelta(hours=2))
    assert await sender.deliver_due() == 0
    assert smtp_server.refused == 1
    assert smtp_server.messages == []


def test_only_refusals_of_the_recipient_or_message_are_for_good() -> None:
    refused = aiosmtplib.SMTPRecipientRefused(550, "no such user", "a@example.com")
    greylisted = aiosmtplib.SMTPRecipientRefused(450, "try later", "b@example.com")
    assert is_permanent_refusal(refused)
    assert not is_permanent_refusal(greylisted)
    assert is_permanent_refusal(aiosmtplib.SMTPRecipientsRefused([refused]))
    assert not is_permanent_refusal(aiosmtplib.SMTPRecipientsRefused([refused, greylisted]))
    assert is_permanent_refusal(aiosmtplib.SMTPDataError(554, "rejected as spam"))
    assert not is_permanent_refusal(aiosmtplib.SMTPDataError(451, "try again"))
    # A bad login is the operator's to fix; the mail waits for it.
    assert not is_permanent_refusal(aiosmtplib.SMTPAuthenticationError(535, "bad credentials"))
    assert not is_permanent_refusal(ConnectionRefusedError())


async def test_an_unreachable_server_leaves_the_mail_pending(
    database: Database, settings: Settings, clock: FrozenClock
) -> None:
    settings = settings.model_copy(update={"smtp_url": f"smtp://127.0.0.1:{free_port()}"})
    mail = await write_notice(database, settings)

    assert await MailSender(database, settings).deliver_due() == 0

    stored = await load(database, mail.id)
    assert (stored.status, stored.attempts, stored.sent_at) == (MailStatus.PENDING, 1, None)
    assert stored.last_error
    assert stored.next_attempt_at > clock()
    assert stored.claimed_until is None


async def test_development_keeps_the_mail_and_logs_its_links_without_tokens(
    database: Database,
    settings: Settings,
    clock: FrozenClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert settings.smtp_url == ""
    caplog.set_level(logging.INFO, logger="signoff.mail.sender")
    mail = await write_notice(database, settings, subject="Dev subject")

    assert await MailSender(database, settings).deliver_due() == 1

    stored = await load(database, mail.id)
    assert (stored.status, stored.sent_at) == (MailStatus.KEPT, clock())
    [record] = [r for r in caplog.records if r.name == "signoff.mail.sender"]
    assert record.levelno == logging.INFO
    logged = record.getMessage()
    # The link, less its token: the whole one is in the dashboard's Mailbox, never in the log.
    token = LINK.split("token=")[1].split("&")[0]
    assert token not in logged
    assert LINK.replace(token, "[redacted]") in logged
    assert "/dashboard/mailbox" in logged
    assert RECIPIENT in logged
    assert "Dev subject" in logged
    assert await MailSender(database, settings).deliver_due() == 0


async def test_concurrent_senders_send_each_mail_exactly_once(
    database: Database,
    database_url: str,
    settings: Settings,
    clock: FrozenClock,
    smtp_server: FakeSmtpServer,
) -> None:
    settings = with_smtp(settings, smtp_server)
    mails = [await write_notice(database, settings, to=f"u{n}@example.com") for n in range(30)]
    # One Database each, as three processes would have; small batches so the claims interleave.
    databases = [Database.from_url(database_url) for _ in range(3)]
    try:
        senders = [MailSender(db, settings, batch_size=4) for db in databases]
        counts = await asyncio.gather(*(sender.deliver_due() for sender in senders))
    finally:
        for db in databases:
            await db.dispose()

    assert sum(counts) == 30
    assert Counter(smtp_server.message_ids) == Counter(mail.message_id for mail in mails)
    assert {mail.status for mail in await all_mails(database)} == {MailStatus.SENT}


async def test_mail_written_before_a_crash_is_sent_once_after_the_restart(
    database: Database,
    database_url: str,
    settings: Settings,
    clock: FrozenClock,
    smtp_server: FakeSmtpServer,
) -> None:
    settings = with_smtp(settings, smtp_server)
    first_process = Database.from_url(database_url)
    mails = [await write_notice(first_process, settings) for _ in range(5)]
    await first_process.dispose()  # died before its sender ran

    restarted = Database.from_url(database_url)
    try:
        sender = MailSender(restarted, settings)
        assert await sender.deliver_due() == 5
        assert await sender.deliver_due() == 0
    finally:
        await restarted.dispose()
    assert sorted(smtp_server.message_ids) == sorted(mail.message_id for mail in mails)


async def test_a_dead_senders_claim_blocks_others_until_it_runs_out(
    database: Database, settings: Settings, clock: FrozenClock, smtp_server: FakeSmtpServer
) -> None:
    # A server that accepts the connection and never greets: the first sender claims the mail,
    # then hangs in SMTP, where it "dies" (is cancelled) with its claim in place.
    with socket.create_server(("127.0.0.1", 0)) as silent:
        port = silent.getsockname()[1]
        silent_url = f"smtp://127.0.0.1:{port}"
        doomed = MailSender(database, settings.model_copy(update={"smtp_url": silent_url}))
        mail = await write_notice(database, settings)
        dying = asyncio.create_task(doomed.deliver_due())
        claimed = await wait_until(
            lambda: claimed_at(database, mail.id), "the sender to claim the mail", interval=0.01
        )
        dying.cancel()
        with pytest.raises(asyncio.CancelledError):
            await dying
    assert claimed == clock() + timedelta(seconds=settings.mail_claim_seconds)

    survivor = MailSender(database, with_smtp(settings, smtp_server))
    assert await survivor.deliver_due() == 0  # the claim still holds
    clock.advance(timedelta(seconds=settings.mail_claim_seconds - 1))
    assert await survivor.deliver_due() == 0
    assert smtp_server.messages == []

    clock.advance(timedelta(seconds=1))
    assert await survivor.deliver_due() == 1
    assert await survivor.deliver_due() == 0
    assert smtp_server.message_ids == [mail.message_id]
    stored = await load(database, mail.id)
    assert (stored.status, stored.attempts) == (MailStatus.SENT, 1)


async def test_run_waits_for_the_poll_and_wake_sends_at_once(
    database: Database, settings: Settings, clock: FrozenClock, smtp_server: FakeSmtpServer
) -> None:
    settings = with_smtp(settings, smtp_server, mail_poll_seconds=3600)
    sender = MailSender(database, settings)
    app = FastAPI()
    app.state.mail_sender = sender
    first = await write_notice(database, settings)
    task = asyncio.create_task(sender.run())
    try:
        # The first pass runs at once; after it the loop waits for a wake or the poll.
        await wait_until(lambda: len(smtp_server.messages) == 1)
        second = await write_notice(database, settings)
        await asyncio.sleep(0.2)  # nothing to wait on: the second mail must not go without a wake
        assert smtp_server.message_ids == [first.message_id]

        sender.wake()
        await wait_until(lambda: len(smtp_server.messages) == 2)
        assert smtp_server.message_ids == [first.message_id, second.message_id]
        assert not task.done()
    finally:
        await stop(task)
