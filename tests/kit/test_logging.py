"""Log formats, the run context on every line, and the redaction of secrets and link tokens."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator

import pytest

from signoff.kit.logging import (
    ContextFilter,
    JsonFormatter,
    Redactor,
    TextFormatter,
    configure_logging,
    log_context,
    redact_tokens,
)

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJ0eXBlIjoic3RlcCIsInJ1biI6MX0.c2lnbmF0dXJlLXNpZ25hdHVyZQ"


@pytest.mark.parametrize(
    ("line", "secret"),
    [
        # uvicorn's access log line for an email link
        (f'127.0.0.1:5000 - "POST /api/workflows/resume?token={JWT}&action=approve HTTP/1.1" 303',
         JWT),
        ('"GET /api/workflows/w1/approve?token=opaque-token-value HTTP/1.1" 200',
         "opaque-token-value"),
        ('"GET /dashboard/invitations/Zm9vYmFyYmF6cXV4 HTTP/1.1" 200', "Zm9vYmFyYmF6cXV4"),
        ('"POST /dashboard/verify-email/abcDEF123456/resend HTTP/1.1" 303', "abcDEF123456"),
        (f"a link {JWT} pasted in a message", JWT),
        ("Authorization: Bearer sess-0123456789abcdef0123", "sess-0123456789abcdef0123"),
        ("form csrf_token=deadbeefcafe0123456789", "deadbeefcafe0123456789"),
        ("X-CSRF-Token: deadbeefcafe0123456789", "deadbeefcafe0123456789"),
        ("connecting to smtp://mailer:s3cr3t-pass@smtp.example.com:587", "s3cr3t-pass"),
        ("postgresql+psycopg://app:db-pass-9@db:5432/signoff", "db-pass-9"),
    ],
)  # fmt: skip
def test_token_shapes_are_redacted(line: str, secret: str) -> None:
    redacted = redact_tokens(line)
    assert secret not in redacted
    assert "[redacted]" in redacted


def test_configured_secrets_are_redacted_wherever_they_are() -> None:
    redact = Redactor(["sk-live-key-0123", "short-and-long-secret", "short"])
    assert redact("key sk-live-key-0123 and short-and-long-secret") == (
        "key [redacted] and [redacted]"
    )
    # Ordinary lines are left alone.
    assert redact("step 2 (generate_outline) completed") == "step 2 (generate_outline) completed"


def _record(message: str, *args: object, exc: bool = False) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise RuntimeError(f"failed with {JWT}")
        except RuntimeError:
            exc_info = sys.exc_info()
    record = logging.LogRecord("signoff.test", logging.INFO, __file__, 1, message, args, exc_info)
    ContextFilter().filter(record)
    return record


def test_json_lines_carry_the_run_context_and_are_redacted() -> None:
    formatter = JsonFormatter(Redactor(["sk-live-key-0123"]))
    with log_context(workflow="wf-1", run=7, step=2, attempt_number=3):
        line = formatter.format(_record("calling with %s", "sk-live-key-0123", exc=True))
    entry = json.loads(line)
    assert entry["message"] == "calling with [redacted]"
    assert (entry["workflowId"], entry["runId"], entry["stepIndex"], entry["attempt"]) == (
        "wf-1",
        7,
        2,
        3,
    )
    assert (entry["level"], entry["logger"]) == ("INFO", "signoff.test")
    assert "RuntimeError" in entry["exc"]
    assert JWT not in entry["exc"]
    assert "\n" not in line

    outside = json.loads(formatter.format(_record("no run here")))
    assert "runId" not in outside
    assert "workflowId" not in outside


def test_text_lines_name_the_run_before_any_traceback() -> None:
    formatter = TextFormatter(Redactor())
    with log_context(workflow="wf-1", run=7, step=0, attempt_number=1):
        line = formatter.format(_record("step failed", exc=True))
    first, _, traceback = line.partition("\n")
    assert first.endswith("step failed [workflow=wf-1 run=7 step=0 attempt=1]")
    assert "RuntimeError" in traceback
    assert JWT not in traceback


def test_log_context_restores_what_was_there() -> None:
    formatter = JsonFormatter(Redactor())
    with log_context(workflow="wf-1"):
        with log_context(run=7, step=1, attempt_number=1):
            inner = json.loads(formatter.format(_record("inner")))
        outer = json.loads(formatter.format(_record("outer")))
    assert (inner["workflowId"], inner["runId"]) == ("wf-1", 7)
    assert outer["workflowId"] == "wf-1"
    assert "runId" not in outer


@pytest.fixture
def root_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        yield
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in handlers:
            root.addHandler(handler)
        root.setLevel(level)


def test_configure_logging_sets_level_and_format(
    root_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging("WARNING", "json", ["sk-live-key-0123"])
    logging.getLogger("uvicorn.access").warning("GET /x?token=%s", "abc123456")
    logging.getLogger("signoff.test").info("not at WARNING")
    logging.getLogger("httpx").warning("key sk-live-key-0123")
    lines = capsys.readouterr().err.splitlines()
    assert [json.loads(line)["message"] for line in lines] == [
        "GET /x?token=[redacted]",
        "key [redacted]",
    ]
