"""Reading the emails the fake SMTP server received: wait for them, their text and their links."""

from __future__ import annotations

import re
from email.message import EmailMessage
from html.parser import HTMLParser

from tests.support.settings import BASE_URL
from tests.support.smtp import FakeSmtpServer
from tests.support.waiting import wait_until


async def wait_for_mail(
    server: FakeSmtpServer, count: int, *, timeout: float = 10.0
) -> list[EmailMessage]:
    """Every email received, once there are at least ``count``."""

    def arrived() -> list[EmailMessage] | None:
        return list(server.messages) if len(server.messages) >= count else None

    return await wait_until(
        arrived,
        lambda: f"{count} emails; got {len(server.messages)}",
        timeout=timeout,
    )


async def mail_to(
    server: FakeSmtpServer, address: str, subject: str, *, count: int = 1, timeout: float = 10.0
) -> EmailMessage:
    """The ``count``-th email to ``address`` whose subject contains ``subject``, once it came."""

    def arrived() -> EmailMessage | None:
        found = [
            message
            for message in list(server.messages)
            if message["To"] == address and subject in str(message["Subject"])
        ]
        return found[count - 1] if len(found) >= count else None

    def received() -> str:
        got = [(str(m["To"]), str(m["Subject"])) for m in server.messages]
        return f"email {subject!r} #{count} to {address}; got {got}"

    return await wait_until(arrived, received, timeout=timeout)


def text_of(message: EmailMessage) -> str:
    """The email's plain-text part."""
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())


def links_in(message: EmailMessage) -> list[str]:
    """The links of an email's text part, as paths on the test server."""
    return [
        url.removeprefix(BASE_URL)
        for url in re.findall(re.escape(BASE_URL) + r"/\S+", text_of(message))
    ]


def link(message: EmailMessage, prefix: str) -> str:
    """The one link of the email that starts with ``prefix`` (a path on the test server)."""
    [path] = [url for url in links_in(message) if url.startswith(prefix)]
    return path


def hrefs(html: str) -> list[str]:
    """The ``href`` of every link in an HTML document, entities decoded as a browser would."""

    class _Links(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.found: list[str] = []

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            self.found += [value for name, value in attrs if name == "href" and value]

    parser = _Links()
    parser.feed(html)
    return parser.found
