"""A real OpenAI-compatible server for tests: ``POST /v1/chat/completions`` on 127.0.0.1.

It answers from a queue of scripted replies and records every request body, so a test drives
pydantic-ai's real OpenAI client over real HTTP and then reads what the model was sent::

    from tests.support.openai_fake import FakeOpenAI, http_error, tool_call

    async def test_something(fake_openai: FakeOpenAI) -> None:
        fake_openai.script(tool_call("submit_plan", {...}), http_error(500))
        settings = make_settings(..., llm_model="fake-model", llm_base_url=fake_openai.base_url)
        with override_allow_model_requests(True):
            ...
        assert "<goal>" in fake_openai.user_text(0)

A request that finds the queue empty is answered 500 (and recorded), so a test that expects
fewer requests fails on its request count rather than hanging.

The ``fake_openai`` fixture (tests/conftest.py) runs one per test.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import count
from typing import Any

MODEL = "fake-model"


@dataclass(frozen=True)
class Reply:
    """One scripted answer: an HTTP status, a JSON body, headers, and an optional delay."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)
    delay_seconds: float = 0.0


_ids = count(1)


def tool_call(
    name: str,
    arguments: dict[str, Any],
    *,
    model: str = MODEL,
    prompt_tokens: int = 42,
    completion_tokens: int = 7,
) -> Reply:
    """The model calls the tool ``name`` with ``arguments`` (a JSON string, as OpenAI sends)."""
    number = next(_ids)
    message = {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": f"call_{number}",
                "type": "function",
                "function": {"name": name, "arguments": json.dumps(arguments)},
            }
        ],
    }
    return Reply(
        200, _completion(number, model, message, "tool_calls", prompt_tokens, completion_tokens)
    )


def text(content: str, *, model: str = MODEL) -> Reply:
    """The model answers with plain text."""
    number = next(_ids)
    message = {"role": "assistant", "content": content}
    return Reply(200, _completion(number, model, message, "stop", 10, 3))


def http_error(
    status: int, message: str = "the fake server failed", *, delay_seconds: float = 0.0
) -> Reply:
    """An error in OpenAI's shape. ``retry-after-ms: 1`` keeps the client's own retries instant."""
    body = {"error": {"message": message, "type": "server_error", "code": None}}
    return Reply(status, body, {"retry-after-ms": "1"}, delay_seconds)


def _completion(
    number: int, model: str, message: dict[str, Any], finish: str, prompt: int, completion: int
) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-{number}",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": model,
        "choices": [{"index": 0, "finish_reason": finish, "message": message}],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        },
    }


_NOTHING_SCRIPTED = http_error(500, "fake OpenAI server: no reply was scripted for this request")


class FakeOpenAI:
    """The server's state; the HTTP handler runs in the server's threads, hence the lock."""

    def __init__(self) -> None:
        self.base_url = ""
        self.requests: list[dict[str, Any]] = []
        """The JSON body of every request, in order."""
        self.authorizations: list[str | None] = []
        """The ``Authorization`` header of every request."""
        self._replies: deque[Reply] = deque()
        self._log: list[str] = []
        self._lock = threading.Lock()

    def script(self, *replies: Reply) -> None:
        """Queue replies; each request takes the next one."""
        with self._lock:
            self._replies.extend(replies)

    def messages(self, index: int) -> list[dict[str, Any]]:
        """The chat messages of request ``index``."""
        messages: list[dict[str, Any]] = self.requests[index]["messages"]
        return messages

    def user_text(self, index: int) -> str:
        """Everything the user (not the system) said in request ``index``, joined."""
        return "\n".join(
            str(message["content"]) for message in self.messages(index) if message["role"] == "user"
        )

    def log(self) -> str:
        """One line per request: when, the start of its last message and the status it got.
        Printed after each test, so a failed test shows who asked what."""
        with self._lock:
            return "\n".join(self._log) or "no requests"

    def _take(self, body: dict[str, Any], authorization: str | None) -> Reply:
        with self._lock:
            self.requests.append(body)
            self.authorizations.append(authorization)
            reply = self._replies.popleft() if self._replies else _NOTHING_SCRIPTED
            last = str((body.get("messages") or [{}])[-1].get("content"))[:80]
            moment = datetime.now(UTC).strftime("%H:%M:%S.%f")
            self._log.append(f"{moment} {reply.status} <- {last!r}")
            return reply


def _handler(fake: FakeOpenAI) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            if self.path.rstrip("/") != "/v1/chat/completions":
                self._send(Reply(404, {"error": {"message": f"no route {self.path}"}}))
                return
            length = int(self.headers.get("Content-Length", "0"))
            body = json.loads(self.rfile.read(length))
            reply = fake._take(body, self.headers.get("Authorization"))
            if reply.delay_seconds:
                time.sleep(reply.delay_seconds)
            self._send(reply)

        def _send(self, reply: Reply) -> None:
            data = json.dumps(reply.body).encode()
            self.send_response(reply.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.end_headers()
            # The client may have given up (a timeout test); there is nobody left to tell.
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep test output clean

    return Handler


@contextlib.contextmanager
def running_fake_openai() -> Iterator[FakeOpenAI]:
    """A running fake on 127.0.0.1 until the block ends; its ``base_url`` ends in ``/v1``."""
    fake = FakeOpenAI()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    server.daemon_threads = True
    # A short poll interval: shutdown() waits up to one interval.
    thread = threading.Thread(
        target=server.serve_forever, args=(0.02,), name="fake-openai", daemon=True
    )
    thread.start()
    fake.base_url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
