"""Browser tests: the real service as users run it, driven by Debian's Chromium via Playwright.

- ``server``: ``signoff db upgrade`` then ``signoff serve`` in subprocesses, on a free loopback
  port, with SQLite, the inline queue, no SMTP (so the dev mailbox is on) and the offline model
  taking ``OFFLINE_DELAY`` seconds per call, so that a test can watch a run progress. One per
  xdist worker, shared by its tests: each test signs up accounts of its own. ``api``: an
  httpx client of it, for what a test prepares through the API.
- ``browser``: one Chromium per test module, ``/usr/bin/chromium`` with ENGINEERING.md's flags
  (never ``playwright install``: these machines have no network). Without it the tests are
  skipped with how to install it, except under ``CI=true``, where they fail.
- ``new_page(**context_options)``: a page in a fresh browser context (no cookies: another
  person, or the same one in another browser). ``page``: the first one. Every context records
  every request and blocks any to another origin; the test then fails, as it does on an
  uncaught JavaScript error, an inline ``<script>`` or a form control without a label.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, expect, sync_playwright

from tests.support.browser import (
    CHROMIUM,
    CHROMIUM_ARGS,
    TIMEOUT_MS,
    VIEWPORT,
    Server,
    Traffic,
    running_server,
)
from tests.support.postgres import IN_CI

expect.set_options(timeout=TIMEOUT_MS)


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    # SIGNOFF_SMTP_URL is unset: the dev mailbox is on. The server's log is printed when it
    # stops (pytest shows it when a test failed).
    with running_server(tmp_path_factory.mktemp("browser")) as server:
        yield server


@pytest.fixture
def api(server: Server) -> Iterator[httpx.Client]:
    """An API client of the server (drafting a plan takes a few offline model calls)."""
    with httpx.Client(base_url=server.base_url, timeout=60) as client:
        yield client


# Module scope, not session: while the sync API is started, its event loop counts as running in
# this thread (it lives in a greenlet), so pytest-asyncio could not run the async tests that the
# same xdist worker runs after this module. Each module's tests run in a row on a worker.
@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} is missing: run `apt-get install chromium` (or .ci/run)"
        if IN_CI:
            pytest.fail(f"{message}; CI=true: the browser tests must run")
        pytest.skip(message)
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
    try:
        yield chromium
    finally:
        chromium.close()


@pytest.fixture
def new_page(
    browser: Browser, server: Server, request: pytest.FixtureRequest
) -> Iterator[Callable[..., Page]]:
    traffic = Traffic(server.origin)
    contexts: list[BrowserContext] = []

    def open_page(**options: Any) -> Page:
        # A test may ask for another viewport (a phone) among its options.
        context = browser.new_context(base_url=server.base_url, **{"viewport": VIEWPORT, **options})
        context.set_default_timeout(TIMEOUT_MS)
        context.route("**/*", traffic.guard)
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda error: traffic.errors.append(f"{page.url}: {error}"))
        page.on("load", traffic.check_page)
        return page

    yield open_page
    for context in contexts:
        context.close()
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        print(f"----- signoff serve log (tail) -----\n{server.process.output()[-6000:]}")
    assert not traffic.foreign, f"pages asked another origin for: {traffic.foreign}"
    assert not traffic.errors, f"uncaught JavaScript errors: {traffic.errors}"
    assert not traffic.inline_scripts, f"inline <script> on: {traffic.inline_scripts}"
    assert not traffic.unlabelled, f"form controls without a label: {traffic.unlabelled}"


@pytest.fixture
def page(new_page: Callable[..., Page]) -> Page:
    return new_page()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> object:
    # Fixtures read the outcome of the test itself (``item.rep_call``) at teardown.
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report
