"""One error base that carries its HTTP status and machine code.

Services raise these; one handler in :mod:`signoff.app` renders them as
``{"error": "<sentence for a person>", "code": "<machine_code>", "details": [...]}``.
An expected condition is never a 500.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, ClassVar


class ErrorCode(StrEnum):
    """Every machine code an error body can carry (``{"error", "code", "details"?}``).

    Clients branch on these; the sentence in ``error`` is for people and may change.
    """

    # One per HTTP status, the default of each AppError subclass and of framework errors.
    BAD_REQUEST = "bad_request"  # 400
    UNAUTHORIZED = "unauthorized"  # 401
    FORBIDDEN = "forbidden"  # 403
    NOT_FOUND = "not_found"  # 404
    METHOD_NOT_ALLOWED = "method_not_allowed"  # 405
    CONFLICT = "conflict"  # 409
    PAYLOAD_TOO_LARGE = "payload_too_large"  # 413
    VALIDATION_ERROR = "validation_error"  # 422
    TOO_MANY_REQUESTS = "too_many_requests"  # 429
    UPSTREAM_FAILED = "upstream_failed"  # 502
    INTERNAL_ERROR = "internal_error"  # 500
    HTTP_ERROR = "http_error"  # any other HTTP error
    # Specific conditions, raised with one of the statuses above.
    ILLEGAL_TRANSITION = "illegal_transition"  # 500: a bug in the engine, never a client's
    PLANNER_FAILED = "planner_failed"  # 502
    # Not an error: an email link opened by a scanner decided nothing (200).
    IGNORED = "ignored"
    ALREADY_ARCHIVED = "already_archived"
    ALREADY_DECIDED = "already_decided"
    ALREADY_MEMBER = "already_member"
    ALREADY_VERIFIED = "already_verified"
    ARCHIVED = "archived"
    ASSET_NOT_FOUND = "asset_not_found"
    BUDGET_EXCEEDED = "budget_exceeded"  # 429: a team budget (plans, runs, tokens) is used up
    CROSS_SITE_FORM = "cross_site_form"
    CSRF_FAILED = "csrf_failed"
    EDIT_NOT_ALLOWED = "edit_not_allowed"
    EMAIL_TAKEN = "email_taken"
    INVALID_CREDENTIALS = "invalid_credentials"
    INVALID_PLAN = "invalid_plan"
    INVITATION_EXPIRED = "invitation_expired"
    INVITATION_INVALID = "invitation_invalid"
    INVITATION_NOT_FOUND = "invitation_not_found"
    INVITATION_OTHER_ACCOUNT = "invitation_other_account"
    INVITATION_REVOKED = "invitation_revoked"
    INVITATION_USED = "invitation_used"
    LAST_OWNER = "last_owner"
    LINK_EXPIRED = "link_expired"
    LINK_INVALID = "link_invalid"
    LINK_WRONG_TYPE = "link_wrong_type"
    MEMBER_NOT_FOUND = "member_not_found"
    MEMORY_KEY_INVALID = "memory_key_invalid"
    MEMORY_KEY_RESERVED = "memory_key_reserved"
    MEMORY_NOT_FOUND = "memory_not_found"
    NO_STEPS = "no_steps"
    NO_TEAM = "no_team"
    NOT_AWAITING = "not_awaiting"
    NOT_DRAFT = "not_draft"
    NOTE_TOO_LONG = "note_too_long"
    NOTHING_TO_RETRY = "nothing_to_retry"
    PASSWORD_TOO_SHORT = "password_too_short"  # noqa: S105 (a code, not a password)
    PLAN_CHANGED = "plan_changed"
    RUN_ACTIVE = "run_active"
    RUN_ENDED = "run_ended"
    RUN_NOT_FOUND = "run_not_found"
    RUN_STOPPED = "run_stopped"
    STALE_ATTEMPT = "stale_attempt"
    STEP_NOT_RERUNNABLE = "step_not_rerunnable"
    TEAM_NOT_FOUND = "team_not_found"
    VERIFICATION_EXPIRED = "verification_expired"
    VERIFICATION_INVALID = "verification_invalid"
    WORKFLOW_NOT_ACTIVE = "workflow_not_active"
    WORKFLOW_NOT_FOUND = "workflow_not_found"


class AppError(Exception):
    """Base of every expected error. Subclasses fix ``status`` and a default ``code``."""

    status: ClassVar[int] = 500
    code: ClassVar[ErrorCode] = ErrorCode.INTERNAL_ERROR

    def __init__(
        self,
        message: str,
        *,
        code: ErrorCode | None = None,
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
    code = ErrorCode.BAD_REQUEST


class Unauthorized(AppError):
    status = 401
    code = ErrorCode.UNAUTHORIZED


class Forbidden(AppError):
    status = 403
    code = ErrorCode.FORBIDDEN


class NotFound(AppError):
    status = 404
    code = ErrorCode.NOT_FOUND


class Conflict(AppError):
    status = 409
    code = ErrorCode.CONFLICT


class Unprocessable(AppError):
    status = 422
    code = ErrorCode.VALIDATION_ERROR


class TooManyRequests(AppError):
    status = 429
    code = ErrorCode.TOO_MANY_REQUESTS

    def __init__(
        self, message: str, *, retry_after_seconds: int, code: ErrorCode | None = None
    ) -> None:
        super().__init__(
            message, code=code, headers={"Retry-After": str(max(1, retry_after_seconds))}
        )
        self.retry_after_seconds = retry_after_seconds


class UpstreamFailed(AppError):
    """A provider we depend on (the LLM) failed or kept answering nonsense."""

    status = 502
    code = ErrorCode.UPSTREAM_FAILED
