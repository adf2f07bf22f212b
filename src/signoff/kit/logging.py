"""Logging: level and format from settings, run context on every line, secrets redacted.

- ``SIGNOFF_LOG_LEVEL`` (default INFO) and ``SIGNOFF_LOG_FORMAT``: ``text`` (one readable
  line) or ``json`` (one object per line, for log shippers).
- **Run context**: the engine sets :data:`workflow_id`, :data:`run_id`, :data:`step_index` and
  :data:`attempt` (context variables) around a step, the planner and the scheduler set the
  workflow id; every line logged meanwhile, by our code or a library's (the model's HTTP client,
  …), carries them (``workflowId``, ``runId``, ``stepIndex``, ``attempt`` in json).
- **Redaction**, in the formatter, so it covers every logger (uvicorn's access log too), the
  message, its arguments and tracebacks alike: the configured secrets (API keys, SMTP and
  database passwords, the token secret, the metrics token), and link tokens wherever they show
  (``token=…`` in query strings, ``/invitations/…`` and ``/verify-email/…`` paths, anything
  shaped like a JWT), bearer credentials and CSRF tokens. Defence in depth: nothing logs these
  on purpose.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from datetime import UTC, datetime
from typing import Any, Literal

REDACTED = "[redacted]"

workflow_id: ContextVar[str | None] = ContextVar("signoff_workflow_id", default=None)
run_id: ContextVar[int | None] = ContextVar("signoff_run_id", default=None)
step_index: ContextVar[int | None] = ContextVar("signoff_step_index", default=None)
attempt: ContextVar[int | None] = ContextVar("signoff_attempt", default=None)

# (record attribute / json key, context variable)
_CONTEXT: tuple[tuple[str, ContextVar[Any]], ...] = (
    ("workflowId", workflow_id),
    ("runId", run_id),
    ("stepIndex", step_index),
    ("attempt", attempt),
)

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # ?token=… / &csrf_token=… (email links, forms echoed in a URL)
    (re.compile(r"((?:^|[?&\s\"'])(?:token|csrf_token)=)[^&\s\"'<>]+"), rf"\1{REDACTED}"),
    # the account links carry their token in the path
    (re.compile(r"(/(?:invitations|verify-email)/)[^/?#\s\"'<>]+"), rf"\1{REDACTED}"),
    # JWTs (every signed link token) wherever else they turn up
    (re.compile(r"eyJ[\w-]{8,}\.[\w-]{8,}\.[\w-]{8,}"), REDACTED),
    (re.compile(r"(Bearer\s+)[\w.~+/=-]{16,}"), rf"\1{REDACTED}"),
    (re.compile(r"((?i:x-csrf-token|csrf_token)[\"']?\s*[:=]\s*[\"']?)[\w-]+"), rf"\1{REDACTED}"),
    # user:password@ in any URL (SMTP, database)
    (re.compile(r"(://[^:/@\s]+:)[^@\s/]+@"), rf"\1{REDACTED}@"),
)


class Redactor:
    """Removes known secret values and token-shaped strings from text."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        # Longest first, so a secret containing another is removed whole.
        self._secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        for pattern, replacement in _PATTERNS:
            text = pattern.sub(replacement, text)
        return text


_TOKENS_ONLY = Redactor()


def redact_tokens(text: str) -> str:
    """``text`` without link tokens, bearer credentials or URL passwords (no configured secret
    is known here: the log formatter removes those too)."""
    return _TOKENS_ONLY(text)


def _context(record: logging.LogRecord) -> dict[str, Any]:
    return {
        key: getattr(record, key) for key, _ in _CONTEXT if getattr(record, key, None) is not None
    }


class ContextFilter(logging.Filter):
    """Copies the run context variables onto every record (on the handler: a library's lines
    get them too)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, variable in _CONTEXT:
            if getattr(record, key, None) is None:
                setattr(record, key, variable.get())
        return True


class TextFormatter(logging.Formatter):
    """``time [pid] LEVEL logger: message [workflow=… run=… step=… attempt=…]``, redacted (the
    pid tells apart the processes of ``signoff serve --workers N``)."""

    def __init__(self, redact: Redactor) -> None:
        super().__init__("%(asctime)s [%(process)d] %(levelname)s %(name)s: %(message)s")
        self._redact = redact

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        context = _context(record)
        if context:
            names = {"workflowId": "workflow", "runId": "run", "stepIndex": "step"}
            pairs = " ".join(f"{names.get(k, k)}={v}" for k, v in context.items())
            head, newline, rest = line.partition("\n")  # before a traceback
            line = f"{head} [{pairs}]{newline}{rest}"
        return self._redact(line)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the run context, exc."""

    def __init__(self, redact: Redactor) -> None:
        super().__init__()
        self._redact = redact

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "pid": record.process,
            "message": self._redact(record.getMessage()),
            **_context(record),
        }
        if record.exc_info:
            entry["exc"] = self._redact(self.formatException(record.exc_info))
        elif record.exc_text:
            entry["exc"] = self._redact(record.exc_text)
        return json.dumps(entry, ensure_ascii=False, default=str)


LogFormat = Literal["text", "json"]


def configure_logging(
    level: str | int = logging.INFO,
    log_format: LogFormat = "text",
    secrets: Iterable[str] = (),
) -> None:
    """One handler on the root logger (stderr) that every logger, uvicorn's included, reaches."""
    redact = Redactor(secrets)
    formatter: logging.Formatter = (
        JsonFormatter(redact) if log_format == "json" else TextFormatter(redact)
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    handler.addFilter(ContextFilter())
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    # aiosqlite's debug lines print every statement with its parameters (password hashes,
    # whole emails): noise at best, so they stay off even at DEBUG.
    logging.getLogger("aiosqlite").setLevel(max(logging.INFO, root.level))


@contextmanager
def log_context(
    *,
    workflow: str | None = None,
    run: int | None = None,
    step: int | None = None,
    attempt_number: int | None = None,
) -> Iterator[None]:
    """Set the run context for the block (only the values given), then restore it."""
    tokens: list[Token[Any]] = []
    variables: tuple[tuple[ContextVar[Any], object], ...] = (
        (workflow_id, workflow),
        (run_id, run),
        (step_index, step),
        (attempt, attempt_number),
    )
    for variable, value in variables:
        if value is not None:
            tokens.append(variable.set(value))
    try:
        yield
    finally:
        for token in reversed(tokens):
            token.var.reset(token)
