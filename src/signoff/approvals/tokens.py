"""Link tokens: JWTs signed with HS256 (pinned), one type per link, expiry and a unique id.

A token of one type is refused where another is expected; its claims are type-checked (a missing
or mistyped one is ``link_invalid``, like an altered token), as are its times (``iat``/``nbf``
in the future: not valid yet). The revision or attempt it carries is checked against the
current one by the service that acts on it. Each approval email carries links of its own for its
recipient: ``recipientId`` names the member the link was sent to, so a decision taken through it
is attributed to them. Lifetimes are settings (``SIGNOFF_PLAN_LINK_TTL_HOURS``,
``SIGNOFF_STEP_LINK_TTL_HOURS``).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Literal

import jwt
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from signoff.config import Settings
from signoff.errors import BadRequest, ErrorCode
from signoff.kit.clock import utc_now
from signoff.kit.ids import new_id
from signoff.kit.storable import MAX_DB_INT as MAX_INT
from signoff.kit.storable import unstorable_problem

LinkType = Literal["plan_approval", "step_approval"]

# Several processes sign and check links: a token "issued" this far in the future is still
# accepted (their clocks may differ a little); further, it is refused.
CLOCK_SKEW = timedelta(seconds=60)
_ALGORITHM = "HS256"
_REQUIRED = ["exp", "iat", "jti", "type"]


class LinkError(BadRequest):
    """A link that cannot be used; the message tells the person why."""


def issue(settings: Settings, link_type: LinkType, claims: dict[str, Any], ttl: timedelta) -> str:
    now = utc_now()
    payload = {
        **claims,
        "type": link_type,
        "iat": int(now.timestamp()),
        "exp": int((now + ttl).timestamp()),
        "jti": new_id(),
    }
    return jwt.encode(payload, settings.secret_key(), algorithm=_ALGORITHM)


def plan_link_ttl(settings: Settings) -> timedelta:
    return timedelta(hours=settings.plan_link_ttl_hours)


def step_link_ttl(settings: Settings) -> timedelta:
    return timedelta(hours=settings.step_link_ttl_hours)


def ttl_words(ttl: timedelta) -> str:
    """A link lifetime as an email says it: "24 hours", "2 hours", "30 minutes"."""
    minutes = round(ttl.total_seconds() / 60)
    if minutes % 60:
        return f"{minutes} minute{'' if minutes == 1 else 's'}"
    hours = minutes // 60
    return f"{hours} hour{'' if hours == 1 else 's'}"


def _recipient(recipient_id: str | None) -> dict[str, Any]:
    return {"recipientId": recipient_id} if recipient_id else {}


def issue_plan_token(
    settings: Settings, *, workflow_id: str, revision: int, recipient_id: str | None = None
) -> str:
    return issue(
        settings,
        "plan_approval",
        {"workflowId": workflow_id, "revision": revision, **_recipient(recipient_id)},
        plan_link_ttl(settings),
    )


class _Claims(BaseModel):
    """What every link token carries, type-checked: a signed token with a claim missing or of
    the wrong type is refused (400 ``link_invalid``), never a 500 further on."""

    model_config = ConfigDict(strict=True, extra="ignore", populate_by_name=True)

    type: str
    iat: float = Field(allow_inf_nan=False)
    exp: float = Field(allow_inf_nan=False)
    nbf: float | None = Field(default=None, allow_inf_nan=False)
    jti: str = Field(min_length=1, max_length=64)
    # The member the link was emailed to (links sent before recipients were named have none).
    recipient_id: str | None = Field(default=None, alias="recipientId", min_length=1, max_length=64)

    @field_validator("*", mode="after")
    @classmethod
    def _storable(cls, value: Any) -> Any:
        if unstorable_problem(value) is not None:
            raise ValueError("unstorable text")
        return value


class PlanClaims(_Claims):
    workflow_id: str = Field(alias="workflowId", min_length=1, max_length=64)
    revision: int = Field(ge=1, le=MAX_INT)


class StepClaims(_Claims):
    workflow_id: str = Field(alias="workflowId", min_length=1, max_length=64)
    run_id: int = Field(alias="runId", ge=1, le=MAX_INT)
    conversation_id: str = Field(alias="conversationId", min_length=1, max_length=64)
    step_index: int = Field(alias="stepIndex", ge=0, le=MAX_INT)
    attempt: int = Field(ge=1, le=MAX_INT)


_INVALID = "This link is not valid: it may have been cut or altered."


def _verify(settings: Settings, token: str | None, expected: LinkType) -> dict[str, Any]:
    if not token:
        raise LinkError(
            "This link is incomplete: it carries no token.", code=ErrorCode.LINK_INVALID
        )
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            settings.secret_key(),
            algorithms=[_ALGORITHM],  # pinned: "none" and every other algorithm are refused
            options={"require": _REQUIRED},
            # The clock is ours (tests move it), so times are checked below, not by PyJWT.
            leeway=timedelta(days=36500),
        )
    except (jwt.InvalidTokenError, ValueError, TypeError, OverflowError):
        raise LinkError(_INVALID, code=ErrorCode.LINK_INVALID) from None
    if not isinstance(claims, dict) or not isinstance(claims.get("type"), str):
        raise LinkError(_INVALID, code=ErrorCode.LINK_INVALID)
    if claims["type"] != expected:
        raise LinkError(
            "This link is for a different kind of decision.", code=ErrorCode.LINK_WRONG_TYPE
        )
    return claims


def _check_times(claims: _Claims) -> None:
    now = utc_now().timestamp()
    not_before = max(claims.iat, claims.nbf if claims.nbf is not None else claims.iat)
    if not_before > now + CLOCK_SKEW.total_seconds():
        raise LinkError(
            "This link is not valid yet: it says it was issued in the future.",
            code=ErrorCode.LINK_INVALID,
        )
    if now >= claims.exp:
        raise LinkError(
            "This link has expired. Ask for a fresh approval email from the dashboard.",
            code=ErrorCode.LINK_EXPIRED,
        )


def verify_plan(settings: Settings, token: str | None) -> PlanClaims:
    """A plan link's claims, or :class:`LinkError` saying what is wrong with it."""
    try:
        claims = PlanClaims.model_validate(_verify(settings, token, "plan_approval"))
    except ValidationError:
        raise LinkError(_INVALID, code=ErrorCode.LINK_INVALID) from None
    _check_times(claims)
    return claims


def verify_step(settings: Settings, token: str | None) -> StepClaims:
    """A step link's claims, or :class:`LinkError` saying what is wrong with it."""
    try:
        claims = StepClaims.model_validate(_verify(settings, token, "step_approval"))
    except ValidationError:
        raise LinkError(_INVALID, code=ErrorCode.LINK_INVALID) from None
    _check_times(claims)
    return claims


def issue_step_token(
    settings: Settings,
    *,
    workflow_id: str,
    run_id: int,
    conversation_id: str,
    step_index: int,
    attempt: int,
    recipient_id: str | None = None,
) -> str:
    return issue(
        settings,
        "step_approval",
        {
            "workflowId": workflow_id,
            "runId": run_id,
            "conversationId": conversation_id,
            "stepIndex": step_index,
            "attempt": attempt,
            **_recipient(recipient_id),
        },
        step_link_ttl(settings),
    )
