"""Link tokens: JWTs signed with HS256 (pinned), one type per link, expiry and a unique id.

A token of one type is refused where another is expected; the revision or attempt it carries
is checked against the current one by the service that acts on it.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Literal

import jwt

from signoff.config import Settings
from signoff.errors import BadRequest, ErrorCode
from signoff.kit.clock import utc_now
from signoff.kit.ids import new_id

LinkType = Literal["plan_approval", "step_approval"]

PLAN_LINK_TTL = timedelta(hours=24)
STEP_LINK_TTL = timedelta(hours=2)
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


def issue_plan_token(settings: Settings, *, workflow_id: str, revision: int) -> str:
    return issue(
        settings,
        "plan_approval",
        {"workflowId": workflow_id, "revision": revision},
        PLAN_LINK_TTL,
    )


def verify(settings: Settings, token: str | None, expected: LinkType) -> dict[str, Any]:
    """The token's claims, or :class:`LinkError` saying what is wrong with it."""
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
            # The clock is ours (tests move it), so expiry is checked below, not by PyJWT.
            leeway=timedelta(days=36500),
        )
    except jwt.InvalidTokenError:
        raise LinkError(
            "This link is not valid: it may have been cut or altered.", code=ErrorCode.LINK_INVALID
        ) from None
    if claims["type"] != expected:
        raise LinkError(
            "This link is for a different kind of decision.", code=ErrorCode.LINK_WRONG_TYPE
        )
    if utc_now().timestamp() >= claims["exp"]:
        raise LinkError(
            "This link has expired. Ask for a fresh approval email from the dashboard.",
            code=ErrorCode.LINK_EXPIRED,
        )
    return claims


def issue_step_token(
    settings: Settings,
    *,
    workflow_id: str,
    run_id: int,
    conversation_id: str,
    step_index: int,
    attempt: int,
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
        },
        STEP_LINK_TTL,
    )
