"""Browser tests: the real service as users run it, driven by Debian's Chromium via Playwright.

- ``server``: ``signoff db upgrade`` then ``signoff serve`` in subprocesses, on a free loopback
  port, with SQLite, the inline queue, no SMTP (so the dev mailbox is on) and the offline model
  taking ``OFFLINE_DELAY`` seconds per call, so that a test can watch a run progress. One per
  xdist worker, shared by its tests: each test signs up accounts of its own.
- ``browser``: one Chromium per test module, ``/usr/bin/chromium`` with ENGINEERING.md's flags
  (never ``playwright install``: these machines have no network). Without it the tests are
  skipped with how to install it, except under ``CI=true``, where they fail.
- ``new_page(**context_options)``: a page in a fresh browser context (no cookies: another
  person, or the same one in another browser). ``page``: the first one. Every context records
  every request and blocks any to another origin; the test then fails, as it does on an
  uncaught JavaScript error, an inline ``<script>`` or a form control without a label.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    Page,
    Playwright,
    Route,
    expect,
    sync_playwright,
)
from playwright.sync_api import (
    Error as PlaywrightError,
)

from tests.conftest import IN_CI
from tests.fakes.smtp import free_port
from tests.runs.processes import SIGNOFF, Process, processes, signoff_env

CHROMIUM = Path("/usr/bin/chromium")
# ENGINEERING.md: tests run as root and offline.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# Seconds per offline model call: long enough to see a step running (the page after a decision
# is rendered before the step's one call ends, even on a busy machine), short enough to be quick.
OFFLINE_DELAY = 1.5
VIEWPORT = {"width": 1200, "height": 800}
# Actions and assertions wait this long at most: room for a busy machine (two cores shared by
# the whole suite), short of Playwright's 30 s for actions that would hide a stuck page.
TIMEOUT_MS = 20_000
expect.set_options(timeout=TIMEOUT_MS)


@dataclass
class Server:
    base_url: str
    data_dir: Path
    process: Process

    @property
    def origin(self) -> str:
        return self.base_url

    @property
    def database_path(self) -> Path:
        return self.data_dir / "signoff.db"


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    workdir = tmp_path_factory.mktemp("browser")
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    settings: dict[str, object] = {
        "data_dir": workdir / "data",
        "base_url": base_url,
        "queue": "inline",
        "offline_delay_seconds": OFFLINE_DELAY,
    }
    # As a user does: migrate, then serve (SIGNOFF_SMTP_URL is unset: the dev mailbox is on).
    upgrade = subprocess.run(
        [str(SIGNOFF), "db", "upgrade"],
        cwd=workdir,
        env=signoff_env(**settings),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert upgrade.returncode == 0, f"signoff db upgrade failed:\n{upgrade.stdout}{upgrade.stderr}"
    # processes() stops the server and prints its log (pytest shows it when a test failed).
    with processes(workdir) as started:
        process, url = started.serve(port=port, **settings)
        assert url == base_url
        yield Server(base_url, workdir / "data", process)


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


PAGE_CHECK = """() => ({
  inline: document.querySelectorAll("script:not([src])").length,
  unlabelled: [...document.querySelectorAll(
    "input:not([type=hidden]):not([type=submit]):not([type=button]), textarea, select")]
    .filter((el) => !el.labels.length && !el.getAttribute("aria-label")
      && !el.getAttribute("aria-labelledby"))
    .map((el) => el.outerHTML.slice(0, 160)),
})"""


@dataclass
class Traffic:
    """What the pages of one test asked for."""

    origin: str
    requests: list[str] = field(default_factory=list)
    foreign: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    inline_scripts: list[str] = field(default_factory=list)
    unlabelled: list[str] = field(default_factory=list)

    def guard(self, route: Route) -> None:
        url = route.request.url
        self.requests.append(url)
        parts = urlsplit(url)
        if parts.scheme in ("data", "blob") or f"{parts.scheme}://{parts.netloc}" == self.origin:
            route.continue_()
        else:
            self.foreign.append(url)
            route.abort("blockedbyclient")

    def check_page(self, page: Page) -> None:
        """What every page must be, checked as each one loads: its JavaScript comes from our
        static files (no inline script, so none that could act on an approval link by itself),
        and every form control has a label."""
        try:
            found = page.evaluate(PAGE_CHECK)
        except PlaywrightError:  # navigated away meanwhile: its next page is checked
            return
        if found["inline"]:
            self.inline_scripts.append(page.url)
        self.unlabelled.extend(f"{page.url}: {control}" for control in found["unlabelled"])


@pytest.fixture
def new_page(
    browser: Browser, server: Server, request: pytest.FixtureRequest
) -> Iterator[Callable[..., Page]]:
    traffic = Traffic(server.origin)
    contexts: list[BrowserContext] = []

    def open_page(**options: Any) -> Page:
        context = browser.new_context(base_url=server.base_url, viewport=VIEWPORT, **options)
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
