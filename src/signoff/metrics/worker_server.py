"""``signoff worker``'s own HTTP server (``SIGNOFF_WORKER_PORT``): ``/healthz`` for a
container's liveness probe, and ``/metrics`` with the series this worker records where it does
the work (step durations, model latencies, tokens; ``access`` decides who may read them).

A thread running the standard library's WSGI server beside the worker's event loop, not in it:
procrastinate keeps its loop and its signal handling, and a scrape never waits behind a step.
Since the thread would answer even with the loop stuck, ``/healthz`` answers 503 once the loop
has not ticked for ``STALE_SECONDS``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterable
from http import HTTPStatus
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CONTENT_TYPE_LATEST

from signoff.config import Settings
from signoff.errors import AppError, ErrorCode, NotFound
from signoff.metrics import instruments
from signoff.metrics.access import refusal

logger = logging.getLogger(__name__)

BEAT_SECONDS = 1.0
STALE_SECONDS = 30.0

StartResponse = Callable[[str, list[tuple[str, str]]], Any]


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _Server6(_Server):
    address_family = socket.AF_INET6


class _Handler(WSGIRequestHandler):
    timeout = 10  # an idle connection does not keep its thread

    def log_message(self, format: str, *args: Any) -> None:
        # Through logging (its level, format and redaction), not wsgiref's bare stderr lines.
        logger.debug("%s " + format, self.address_string(), *args)


class WorkerProbe:
    """Listens from construction (so a port in use fails at once; port 0 takes a free one);
    serves from :meth:`start`; :meth:`beat` runs on the worker's event loop for as long as the
    worker does."""

    def __init__(self, settings: Settings, *, stale_after: float = STALE_SECONDS) -> None:
        self._settings = settings
        self._stale_after = stale_after
        self._beat_every = min(BEAT_SECONDS, stale_after / 3)
        self._last_beat = time.monotonic()
        self._server = make_server(
            settings.host,
            settings.worker_port,
            self._app,
            server_class=_Server6 if ":" in settings.host else _Server,
            handler_class=_Handler,
        )
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="signoff-worker-http", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> None:
        self._thread.start()

    async def beat(self) -> None:
        while True:
            self._last_beat = time.monotonic()
            await asyncio.sleep(self._beat_every)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _app(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if environ["REQUEST_METHOD"] not in ("GET", "HEAD"):
            body = {"error": "Only GET is answered here.", "code": ErrorCode.HTTP_ERROR}
            return _json(start_response, "405 Method Not Allowed", body, [("Allow", "GET")])
        if path == "/healthz":
            stalled = time.monotonic() - self._last_beat > self._stale_after
            if stalled:
                return _json(start_response, "503 Service Unavailable", {"status": "stalled"})
            return _json(start_response, "200 OK", {"status": "ok"})
        if path == "/metrics":
            refused = refusal(self._settings, environ.get("HTTP_AUTHORIZATION", ""))
            if refused is not None:
                return _error(start_response, refused)
            start_response(
                "200 OK", [("Content-Type", CONTENT_TYPE_LATEST), ("Cache-Control", "no-store")]
            )
            return [instruments.exposition()]
        return _error(start_response, NotFound("Not found."))


def _error(start_response: StartResponse, error: AppError) -> Iterable[bytes]:
    status = f"{error.status} {HTTPStatus(error.status).phrase}"
    return _json(start_response, status, error.body(), list(error.headers.items()))


def _json(
    start_response: StartResponse,
    status: str,
    body: dict[str, Any],
    headers: list[tuple[str, str]] | None = None,
) -> Iterable[bytes]:
    start_response(status, [("Content-Type", "application/json"), *(headers or [])])
    return [json.dumps(body).encode()]
