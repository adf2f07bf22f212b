"""What routes declare for the OpenAPI document: their error answers, in one shape.

A route lists the statuses its own logic answers with ``responses=errors(404, 409)``; the
application adds the ones that follow from how a route is built (401/403 for a session,
422 for parameters, 413 for a body: ``signoff.apidoc``). Every error answer is the
``ErrorResponse`` schema.
"""

from __future__ import annotations

from typing import Any

from signoff.kit.schemas import ErrorResponse

ERROR_DESCRIPTIONS: dict[int, str] = {
    400: "The link can't be used (expired, altered, already decided, …): `code` says why.",
    401: "No session, or an expired or revoked one (`unauthorized`), or wrong credentials.",
    403: "The role is too low (`forbidden`), no team (`no_team`), or a cookie-authenticated "
    "write without its CSRF token (`csrf_failed`).",
    404: "Not found, or not visible to you (another team's objects answer exactly like missing "
    "ones); also an `X-Team-Id` you are not in (`team_not_found`).",
    409: "The object's state forbids it now: `code` says which state.",
    413: "The request body is larger than the limit (1 MiB by default).",
    422: "Invalid input: `details` lists each field and what is wrong with it.",
    429: "Too many failed sign-ins from this client, for this address or for any: "
    "`Retry-After` says when to try again.",
    502: "The LLM provider failed, or kept producing an invalid plan (`planner_failed`).",
}

HTML_PAGE: dict[str, Any] = {"schema": {"type": "string"}}


def error_response(status: int, description: str | None = None) -> dict[str, Any]:
    """One error answer for ``responses=``."""
    response: dict[str, Any] = {
        "model": ErrorResponse,
        "description": description or ERROR_DESCRIPTIONS[status],
    }
    if status == 429:
        response["headers"] = {
            "Retry-After": {
                "description": "Seconds to wait before the next try.",
                "schema": {"type": "integer"},
            }
        }
    return response


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The error answers a route's own logic gives, for ``responses=``."""
    return {status: error_response(status) for status in statuses}
