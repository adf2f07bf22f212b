"""One error base that carries its HTTP status and machine code.

Services raise these; one handler in :mod:`signoff.app` renders them as
``{"error": "<sentence for a person>", "code": "<machine_code>", "details": [...]}``.
An expected condition is never a 500.
"""

from __future__ import annotations

from typing import Any, ClassVar


class AppError(Exception):
    """Base of every expected error. Subclasses fix ``status`` and a default ``code``."""

    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        details: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.error_code = code or self.code
        self.details = details
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.message, "code": self.error_code}
        if self.details:
            body["details"] = self.details
        return body


class BadRequest(AppError):
    status = 400
    code = "bad_request"


class Unauthorized(AppError):
    status = 401
    code = "unauthorized"


class Forbidden(AppError):
    status = 403
    code = "forbidden"


class NotFound(AppError):
    status = 404
    code = "not_found"


class Conflict(AppError):
    status = 409
    code = "conflict"


class PayloadTooLarge(AppError):
    status = 413
    code = "payload_too_large"


class Unprocessable(AppError):
    status = 422
    code = "validation_error"


class TooManyRequests(AppError):
    status = 429
    code = "too_many_requests"

    def __init__(self, message: str, *, retry_after_seconds: int) -> None:
        super().__init__(message, headers={"Retry-After": str(max(1, retry_after_seconds))})
        self.retry_after_seconds = retry_after_seconds


class UpstreamFailed(AppError):
    """A provider we depend on (the LLM) failed or kept answering nonsense."""

    status = 502
    code = "upstream_failed"
