"""Playwright tests against a real ``signoff serve``: the browser's settings, what every page is
checked for (:class:`Traffic`), screenshots, and acting as a person."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Page, Route, expect

from tests.support.accounts import PASSWORD
from tests.support.ports import free_port
from tests.support.processes import Process, processes

SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
# SIGNOFF_DOCS_SCREENSHOTS=1: doc_shot() also refreshes the README's copies in docs/screenshots/.
DOCS_SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
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


@contextmanager
def running_server(workdir: Path, **settings: object) -> Iterator[Server]:
    """``signoff serve`` as a user starts it (migrate, then serve), on the inline queue with the
    offline model's calls slowed to :data:`OFFLINE_DELAY`, ``settings`` on top; stopped (its
    log printed) at the end."""
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    values: dict[str, object] = {
        "data_dir": workdir / "data",
        "base_url": base_url,
        "queue": "inline",
        "offline_delay_seconds": OFFLINE_DELAY,
        **settings,
    }
    with processes(workdir) as started:
        started.run("db", "upgrade", **values)
        process, url = started.serve(port=port, **values)
        assert url == base_url
        yield Server(base_url, workdir / "data", process)


API_REFERENCE_PAGES = ("/docs", "/redoc")

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
        and every form control of our own markup has a label. The API reference pages are
        markup that Swagger UI and ReDoc render after the load (their example pickers have no
        label), so only the script rule applies there."""
        try:
            found = page.evaluate(PAGE_CHECK)
        except PlaywrightError:  # navigated away meanwhile: its next page is checked
            return
        if found["inline"]:
            self.inline_scripts.append(page.url)
        if urlsplit(page.url).path not in API_REFERENCE_PAGES:
            self.unlabelled.extend(f"{page.url}: {control}" for control in found["unlabelled"])


def shot(page: Page, name: str) -> Path:
    """A full-page PNG of what the page shows now, kept in artifacts/screenshots/."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def doc_shot(page: Page, name: str) -> Path:
    """:func:`shot`, and with ``SIGNOFF_DOCS_SCREENSHOTS=1`` the same PNG (this viewport, not
    the full page) in docs/screenshots/, where the README shows it."""
    path = shot(page, name)
    if os.environ.get("SIGNOFF_DOCS_SCREENSHOTS") == "1":
        page.screenshot(path=str(DOCS_SCREENSHOTS / f"{name}.png"))
    return path


def sign_in(page: Page, email: str) -> None:
    page.goto("/dashboard/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).not_to_have_url(re.compile(r"/dashboard/login"))
