"""The browser security headers (kit/security_headers.py) on every answer of the application.

The walk takes every GET route from ``app.routes``, so a page added later is covered without
touching this test: it is opened as a signed-in browser, with real ids where the route names
one, and every answer (pages, error pages, link pages, JSON) is checked.
"""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts

from signoff.app import create_app
from signoff.kit.security_headers import PAGE_CSP
from tests.support.accounts import HTML, as_browser, signup
from tests.support.settings import make_settings
from tests.support.workflows import create_workflow

# Live-update streams never end: their headers are the same middleware's, shown by the pages.
STREAMS = {"/dashboard/events", "/dashboard/workflows/{workflow_id}/events"}
PARAM = re.compile(r"{(\w+)}")


def get_paths(app: FastAPI) -> list[str]:
    paths = []
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if isinstance(route, APIRoute) and "GET" in (context.methods or ()):
            assert context.path is not None
            if context.path not in STREAMS:
                paths.append(context.path)
    return sorted(paths)


def assert_page_headers(path: str, response: httpx.Response) -> None:
    csp = response.headers.get("content-security-policy", "")
    for directive in (
        "default-src 'self'",
        "frame-ancestors 'none'",
        "form-action 'self'",
        "base-uri 'none'",
    ):
        assert directive in csp, f"{path}: CSP {csp!r} lacks {directive}"
    if not path.startswith(("/docs", "/redoc")):
        assert csp == PAGE_CSP, f"{path}: {csp!r}"
        assert "unsafe-inline" not in csp
    assert response.headers.get("referrer-policy") == "no-referrer", path


async def test_every_get_route_answers_with_the_security_headers(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    account = await signup(client)
    draft = await create_workflow(client, account)
    values = {
        "workflow_id": draft["workflowId"],
        "run_id": "1",
        "token": "not-a-valid-token",
        "asset_id": "no-such-asset",
        "key": "core",
        "team_id": account.team_id,
    }
    as_browser(client, account)
    html_answers: dict[str, int] = {}
    for path in get_paths(app):
        url = PARAM.sub(lambda match: values.get(match.group(1), "unknown"), path)
        response = await client.get(url, headers=HTML)
        assert response.headers.get("x-content-type-options") == "nosniff", path
        assert "strict-transport-security" not in response.headers, path
        if response.headers.get("content-type", "").startswith("text/html"):
            html_answers[path] = response.status_code
            assert_page_headers(path, response)
    # The walk saw pages, link pages and error pages, not only JSON.
    for path, status in {
        "/dashboard": 200,
        "/dashboard/login": 200,
        "/dashboard/workflows/{workflow_id}": 200,
        "/dashboard/workflows/{workflow_id}/runs/{run_id}": 404,
        "/dashboard/invitations/{token}": 400,
        "/api/workflows/resume": 400,
        "/docs": 200,
        "/redoc": 200,
    }.items():
        assert html_answers.get(path) == status, (path, html_answers)


@pytest.mark.parametrize("path", ["/dashboard/login", "/healthz", "/nowhere", "/openapi.json"])
async def test_json_and_missing_routes_get_the_headers_too(
    client: httpx.AsyncClient, path: str
) -> None:
    response = await client.get(path, headers=HTML)
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"


async def test_strict_transport_security_only_with_an_https_base_url(tmp_path: Path) -> None:
    for base_url, expected in (("https://signoff.example.com", True), ("http://x.test", False)):
        app = create_app(make_settings(tmp_path, base_url=base_url))
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            for path in ("/dashboard/login", "/healthz"):
                response = await http.get(path, headers=HTML)
                hsts = response.headers.get("strict-transport-security")
                assert (hsts == "max-age=31536000") is expected, (base_url, path, hsts)
