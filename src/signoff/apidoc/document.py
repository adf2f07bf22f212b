"""The OpenAPI document: what FastAPI derives from the routes, finished here.

- Every operation lists each error status it really answers with, all as the one
  ``ErrorResponse`` schema: routes declare the ones their own logic gives (``kit/openapi.py``),
  :func:`declare_generic_errors` adds the ones that follow from how a route is built.
- FastAPI's own validation error schemas (``HTTPValidationError``, ``ValidationError``) are
  not in it: a 422 is an ``ErrorResponse`` like every other error.
- The session cookie is documented next to the bearer token, and each tag has a description.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute, iter_route_contexts

from signoff.apidoc.examples import EXAMPLES
from signoff.approvals.guard import BOT_USER_AGENT_MARKERS
from signoff.auth.dependencies import (
    SESSION_COOKIE,
    current_auth,
    current_session_id,
    read_as_caller,
)
from signoff.kit.openapi import error_response

ERROR_REF = "#/components/schemas/ErrorResponse"

TAGS: list[dict[str, str]] = [
    {
        "name": "accounts",
        "description": "Sign up, sign in and out, who you are (`GET /api/me`, which also "
        "gives a cookie-authenticated browser client its CSRF token).",
    },
    {
        "name": "workflows",
        "description": "A goal becomes a plan (drafted by the LLM), a person approves it, the "
        "workflow then runs on demand or on its schedule.",
    },
    {
        "name": "runs",
        "description": "Start, follow, decide and stop runs; steps that publish wait for a "
        "person's decision.",
    },
    {
        "name": "approvals",
        "description": "The approvals inbox: every plan and step waiting for a decision you "
        "may take (owners and admins), across the team's workflows, oldest first.",
    },
    {
        "name": "email links",
        "description": "The links in approval emails: no session needed, whoever holds the "
        "link decides. Scanners never decide; a script decides with `POST`.",
    },
    {
        "name": "scheduling",
        "description": "A workflow's cron schedule (in its timezone) and its fire log.",
    },
    {
        "name": "assets",
        "description": "What runs produced: outlines, reports, posts, images.",
    },
    {
        "name": "memory",
        "description": "The team's memory; key `core` holds the voice and context every plan "
        "and step reads. Writes need the admin role.",
    },
    {
        "name": "teams",
        "description": "Members, roles and invitations of a team named in the path.",
    },
    {
        "name": "audit",
        "description": "Who decided or changed what, when, through which channel (owners "
        "and admins).",
    },
]

DESCRIPTION = f"""\
Signoff's HTTP API: AI workflows that people sign off on.

**Authentication.** Send the `token` from signup or login as `Authorization: Bearer <token>`,
or let a browser send the `{SESSION_COOKIE}` cookie that signup and login set. A
state-changing request authenticated by the cookie must also carry the CSRF token: read it
as `csrfToken` from `GET /api/me` and send it back in the `X-CSRF-Token` header (otherwise
403 `csrf_failed`). Bearer requests need no CSRF token.

**Errors.** Every error answer, validation errors included, is
`{{"error": "<sentence>", "code": "<machine code>", "details"?: [{{"field", "message"}}]}}`
(the `ErrorResponse` schema); `code` is one of the `ErrorCode` values. An expected
condition never answers 500.

**Current team.** List and create routes act in your first team, or in the one named by
the `X-Team-Id` header.

**Email links** need no session. Scanners never decide: a `GET` whose `User-Agent` is empty
or contains one of {", ".join(f"`{marker}`" for marker in BOT_USER_AGENT_MARKERS)}
(case-insensitive) answers 200 and decides nothing, and `HEAD` never decides. A script
decides with `POST`.
"""


def _calls(dependant: Dependant) -> set[Any]:
    found = {dependant.call}
    for sub in dependant.dependencies:
        found |= _calls(sub)
    return found


def _has_parameters(dependant: Dependant) -> bool:
    if dependant.path_params or dependant.query_params or dependant.header_params:
        return True
    if dependant.cookie_params or dependant.body_params:
        return True
    return any(_has_parameters(sub) for sub in dependant.dependencies)


def generic_statuses(route: Any) -> list[int]:
    """The error statuses that follow from how ``route`` (an API route) is built, whatever
    its logic."""
    calls = _calls(route.dependant)
    statuses: list[int] = []
    checks_team = current_auth in calls or read_as_caller in calls
    if checks_team or current_session_id in calls:
        # No session (401); a cookie write without its CSRF token, or no team (403).
        statuses += [401, 403]
    if checks_team:
        statuses.append(404)  # X-Team-Id names a team you are not in
    # The body limit (kit.body_limit) refuses any request's body over the limit; a body is
    # what a client may send to a write, whether or not the operation reads one.
    takes_body = route.body_field is not None or "requestBody" in (route.openapi_extra or {})
    if takes_body or route.methods & {"POST", "PUT", "PATCH", "DELETE"}:
        statuses.append(413)
    if _has_parameters(route.dependant):
        statuses.append(422)
    return statuses


def _error_answer(status: int) -> dict[str, Any]:
    answer = error_response(status)
    del answer["model"]
    answer["content"] = {"application/json": {"schema": {"$ref": ERROR_REF}}}
    return answer


def declare_generic_errors(document: dict[str, Any], routes: list[Any]) -> None:
    """Add each operation's generic error statuses to the ones its route declares, and make
    every 422 the ``ErrorResponse`` (FastAPI's default one is ``{detail: [...]}``)."""
    for context in iter_route_contexts(routes):
        route = context.original_route
        if not isinstance(route, APIRoute) or not context.include_in_schema:
            continue
        operations = document["paths"][context.path_format]
        for method in context.methods or ():
            responses = operations[method.lower()]["responses"]
            for status in generic_statuses(context):
                if str(status) not in responses:
                    responses[str(status)] = _error_answer(status)
            invalid = responses.get("422", {}).get("content", {}).get("application/json", {})
            if invalid.get("schema", {}).get("$ref", "").endswith("/HTTPValidationError"):
                responses["422"] = _error_answer(422)


def add_examples(document: dict[str, Any]) -> None:
    """The seed endpoints' example requests and answers (``apidoc/examples.py``)."""
    operations = {
        operation["operationId"]: operation
        for path in document["paths"].values()
        for operation in path.values()
    }
    for operation_id, examples in EXAMPLES.items():
        operation = operations[operation_id]
        for key, example in examples.items():
            if key == "request":
                body = operation["requestBody"]["content"]["application/json"]
                body["examples"] = example
            else:
                answer = operation["responses"][key]["content"]["application/json"]
                answer["example"] = example


def _sort_responses(document: dict[str, Any]) -> None:
    for path in document.get("paths", {}).values():
        for operation in path.values():
            responses = operation.get("responses", {})
            for status, answer in responses.items():
                if status.startswith("3"):
                    answer.pop("content", None)  # a redirect has no body
            operation["responses"] = dict(sorted(responses.items()))


def install_openapi(app: FastAPI) -> None:
    """Make ``app.openapi()`` return the finished document (built once, on first use)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title,
                version=app.version,
                summary=app.summary,
                description=DESCRIPTION,
                routes=app.routes,
                tags=TAGS,
                separate_input_output_schemas=True,
            )
            declare_generic_errors(document, app.routes)
            schemas = document["components"]["schemas"]
            assert "ErrorResponse" in schemas, "no route declares an error answer"
            schemas.pop("HTTPValidationError", None)
            schemas.pop("ValidationError", None)
            schemes = document.setdefault("components", {}).setdefault("securitySchemes", {})
            schemes["sessionCookie"] = {
                "type": "apiKey",
                "in": "cookie",
                "name": SESSION_COOKIE,
                "description": "Set by signup and login. A state-changing request needs the "
                "CSRF token (`csrfToken` of `GET /api/me`) in `X-CSRF-Token` as well.",
            }
            for path in document.get("paths", {}).values():
                for operation in path.values():
                    security = operation.get("security")
                    if security and {"sessionCookie": []} not in security:
                        security.append({"sessionCookie": []})
            add_examples(document)
            _sort_responses(document)
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
