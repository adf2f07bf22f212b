"""Logging setup. Email-link tokens are redacted from request logs."""

from __future__ import annotations

import logging
import re

_TOKEN = re.compile(r"(token=)[^&\s\"']+")


class RedactTokens(logging.Filter):
    """Replaces ``token=…`` in a log line with ``token=[redacted]``."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args:
            record.args = tuple(
                _TOKEN.sub(r"\1[redacted]", arg) if isinstance(arg, str) else arg
                for arg in (record.args if isinstance(record.args, tuple) else (record.args,))
            )
        if isinstance(record.msg, str):
            record.msg = _TOKEN.sub(r"\1[redacted]", record.msg)
        return True


def configure_logging(level: int = logging.INFO) -> None:
    logging.basicConfig(
        level=level, format="%(asctime)s [%(process)d] %(levelname)s %(name)s: %(message)s"
    )
    # Request lines carry email-link tokens in their query strings; the development outbox log
    # (signoff.mail) is the one place links are printed whole.
    logging.getLogger("uvicorn.access").addFilter(RedactTokens())
