"""A real SMTP server for tests: aiosmtpd on 127.0.0.1, keeping what it receives.

The ``smtp_server`` fixture (tests/conftest.py) runs one per test; use it as::

    async def test_something(smtp_server: FakeSmtpServer) -> None:
        settings = settings.model_copy(update={"smtp_url": smtp_server.url})
        ...
        assert smtp_server.messages[0]["Subject"] == "..."

``fail_next(n)`` makes the next ``n`` deliveries answer a temporary failure (451), the way a
greylisting or overloaded server does, to exercise the sender's retries over the real protocol.

``FakeSmtpServer(login=("user", "password"))`` offers AUTH (PLAIN, LOGIN; over plain text,
as a local test server may) and accepts only that pair; its ``url`` then carries them.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any, TypeVar

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.support.ports import free_port

S = TypeVar("S", bound="FakeSmtpServer")

TEMPORARY_FAILURE = "451 4.3.0 Try again later"


class FakeSmtpServer:
    """The handler aiosmtpd calls, and what the test reads.

    aiosmtpd runs in its own thread and event loop, so the counters are guarded by a lock.
    """

    def __init__(self, login: tuple[str, str] | None = None) -> None:
        self.url = ""
        self.login = login
        self.logins: list[tuple[str, bool]] = []  # (user, accepted) of each AUTH attempt
        self.messages: list[EmailMessage] = []
        self.recipients: list[list[str]] = []  # envelope RCPT TO of each accepted message
        self.refused = 0  # deliveries answered with a failure
        self._fail_next = 0
        self._failure_reply = TEMPORARY_FAILURE
        self._lock = threading.Lock()

    def fail_next(self, count: int, reply: str = TEMPORARY_FAILURE) -> None:
        """Answer ``reply`` to the next ``count`` messages instead of accepting them."""
        with self._lock:
            self._fail_next = count
            self._failure_reply = reply

    @property
    def message_ids(self) -> list[str]:
        return [str(message["Message-ID"]) for message in self.messages]

    def authenticate(
        self, _server: Any, _session: Any, _envelope: Any, _mechanism: str, data: Any
    ) -> AuthResult:
        """aiosmtpd's authenticator: the one ``login`` pair passes."""
        user = data.login.decode() if isinstance(data, LoginPassword) else ""
        password = data.password.decode() if isinstance(data, LoginPassword) else None
        accepted = self.login is not None and (user, password) == self.login
        with self._lock:
            self.logins.append((user, accepted))
        return AuthResult(success=accepted, handled=False)

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:
        with self._lock:
            if self._fail_next > 0:
                self._fail_next -= 1
                self.refused += 1
                return self._failure_reply
            parsed = BytesParser(policy=policy.default).parsebytes(envelope.content)
            assert isinstance(parsed, EmailMessage)
            self.messages.append(parsed)
            self.recipients.append(list(envelope.rcpt_tos))
        return "250 2.0.0 OK"


@contextmanager
def running_smtp_server() -> Iterator[FakeSmtpServer]:
    """A running SMTP server on 127.0.0.1 until the block ends (for fixtures of any scope)."""
    with serving_smtp(FakeSmtpServer()) as server:
        yield server


@contextmanager
def serving_smtp(server: S) -> Iterator[S]:
    """``server`` (a FakeSmtpServer, or a subclass a test made) listening on 127.0.0.1 until
    the block ends; its ``url`` is set (with the login, if the server requires one)."""
    # aiosmtpd needs a concrete port (it connects to it to check it started); another process
    # may take the free port between the probe and the bind, so try a few.
    for _ in range(5):
        port = free_port()
        auth: dict[str, Any] = {}
        if server.login is not None:
            auth = {"authenticator": server.authenticate, "auth_require_tls": False}
        controller = Controller(server, hostname="127.0.0.1", port=port, **auth)
        try:
            controller.start()
        except OSError:
            continue
        break
    else:
        pytest.fail("could not start the fake SMTP server")
    credentials = f"{server.login[0]}:{server.login[1]}@" if server.login else ""
    server.url = f"smtp://{credentials}127.0.0.1:{port}"
    try:
        yield server
    finally:
        controller.stop()
