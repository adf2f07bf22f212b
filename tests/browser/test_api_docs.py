"""The API docs in Chromium: /docs (Swagger UI 5) and /redoc (ReDoc) render the OpenAPI 3.1
document, show the operations, raise no JavaScript error, run no inline script and ask no other
origin for anything.

``docs_page`` guards a page as conftest's ``new_page`` does; the rule that every form control
has a label is for our own pages (``Traffic.check_page``), not ReDoc's example pickers.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.support.browser import TIMEOUT_MS, VIEWPORT, Server, Traffic

pytestmark = [pytest.mark.browser, pytest.mark.processes, pytest.mark.timeout(240)]


@pytest.fixture
def docs_page(browser: Browser, server: Server) -> Iterator[Page]:
    traffic = Traffic(server.origin)
    context = browser.new_context(base_url=server.base_url, viewport=VIEWPORT)
    context.set_default_timeout(TIMEOUT_MS)
    context.route("**/*", traffic.guard)
    page = context.new_page()
    page.on("pageerror", lambda error: traffic.errors.append(f"{page.url}: {error}"))
    page.on("load", traffic.check_page)
    yield page
    context.close()
    assert not traffic.foreign, f"the docs asked another origin for: {traffic.foreign}"
    assert not traffic.errors, f"uncaught JavaScript errors: {traffic.errors}"
    assert not traffic.inline_scripts, f"inline <script> on: {traffic.inline_scripts}"
    assert any(url.endswith("/openapi.json") for url in traffic.requests), traffic.requests


def test_swagger_ui_shows_the_operations(docs_page: Page, server: Server) -> None:
    page = docs_page
    page.goto("/docs")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Signoff")
    # Swagger UI 4 could not read OpenAPI 3.1: it would show an error instead of operations.
    expect(page.locator(".swagger-ui .errors-wrapper")).to_have_count(0)
    create = page.locator('.opblock[id$="createWorkflow"]')
    expect(create).to_be_visible()
    expect(create).to_contain_text("/api/workflows")
    document = httpx.get(f"{server.base_url}/openapi.json").json()
    operations = [op for path in document["paths"].values() for op in path.values()]
    expect(page.locator(".opblock")).to_have_count(len(operations))
    expect(page.locator(".opblock-tag")).to_have_count(len(document["tags"]))
    # An operation opens with its documented answers, the error model among them.
    create.locator(".opblock-summary").click()
    expect(create.locator(".responses-table")).to_contain_text("502")
    page.screenshot(path=str(server.data_dir.parent / "docs.png"))


def test_redoc_shows_the_operations(docs_page: Page) -> None:
    page = docs_page
    page.goto("/redoc")
    expect(page.locator("h1")).to_contain_text("Signoff")
    expect(page.get_by_text("Create a workflow from a goal").first).to_be_attached()
    expect(page.get_by_text("Stop a run").first).to_be_attached()
    expect(page.get_by_text("ErrorResponse").first).to_be_attached()
