"""Input that no database column can store: NUL characters, lone surrogates, huge integers.

PostgreSQL refuses NUL in ``text`` and neither database driver can encode a lone surrogate
(JSON's ``"\\ud800"`` decodes to one), so such input must be refused (422, naming the field)
before it reaches a query. Request bodies are checked by ``kit.schemas.ApiInput``; the query,
path, header and form values of every route by :func:`reject_unstorable`, an application-wide
dependency.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError

# Every integer column that a request can name (run ids, run numbers, revisions, step indexes,
# attempts) is a 32-bit integer on PostgreSQL: larger values are refused (422), not sent.
MAX_DB_INT = 2**31 - 1

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def _describe(text: str) -> str:
    found = _UNSTORABLE.search(text)
    assert found is not None
    return "a NUL character" if found.group() == "\x00" else "a lone surrogate (invalid Unicode)"


def unstorable_problem(value: Any, where: str = "") -> str | None:
    """Why ``value`` (a string, or lists and objects of them) cannot be stored, or None."""
    at = f" (at {where})" if where else ""
    if isinstance(value, str):
        if _UNSTORABLE.search(value):
            return f"contains {_describe(value)}{at}, which cannot be stored"
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            inner = f"{where}.{key}" if where else str(key)
            if isinstance(key, str) and _UNSTORABLE.search(key):
                return f"has a key that contains {_describe(key)}{at}, which cannot be stored"
            problem = unstorable_problem(item, inner)
            if problem is not None:
                return problem
        return None
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            problem = unstorable_problem(item, f"{where}.{index}" if where else str(index))
            if problem is not None:
                return problem
    return None


def _error(location: str, name: str, problem: str) -> dict[str, Any]:
    return {"type": "value_error", "loc": (location, name), "msg": problem, "input": None}


async def reject_unstorable(request: Request) -> None:
    """An application-wide dependency: refuse (422) a request whose path parameters, query
    parameters, headers or form fields hold text that cannot be stored.

    It runs before the route's own parameters are read, so no endpoint ever sees such text.
    """
    errors: list[dict[str, Any]] = []
    for name, value in request.path_params.items():
        if isinstance(value, str) and (problem := unstorable_problem(value)):
            errors.append(_error("path", name, problem))
    for name, value in request.query_params.multi_items():
        if problem := unstorable_problem(name) or unstorable_problem(value):
            errors.append(_error("query", name, problem))
    for name, value in request.headers.items():
        if problem := unstorable_problem(value):
            errors.append(_error("header", name, problem))
    content_type = request.headers.get("content-type", "")
    if content_type.startswith(_FORM_TYPES):
        # Starlette caches the parsed form: the endpoint's Form() parameters still work.
        form = await request.form()
        for name, item in form.multi_items():
            if isinstance(item, str) and (problem := unstorable_problem(item)):
                errors.append(_error("body", name, problem))
    if errors:
        raise RequestValidationError(errors)
