"""What browser tests do over and over: screenshots, and acting as a person (or an API client)."""

from __future__ import annotations

import itertools
import os
import re
from pathlib import Path

import httpx
from playwright.sync_api import Page, expect

from tests.browser.conftest import Server
from tests.support import PASSWORD

SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
# The seed goal (SPEC): the offline model plans research, an outline and an approval-gated post.
SEED_GOAL = "Publish a weekly LinkedIn post about AI news every Monday morning"
_counter = itertools.count()


def shot(page: Page, name: str) -> Path:
    """A full-page PNG of what the page shows now, kept in artifacts/screenshots/."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def new_email(label: str = "user") -> str:
    # Unique across xdist workers too (each has its own server, but the names stay readable).
    return f"{label}{next(_counter)}-{os.getpid()}@example.com"


def api_signup(server: Server, email: str) -> dict[str, str]:
    """Sign up through the API; returns Bearer headers."""
    response = httpx.post(
        f"{server.base_url}/api/auth/signup", json={"email": email, "password": PASSWORD}
    )
    assert response.status_code == 201, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


def api_create_workflow(server: Server, headers: dict[str, str], goal: str = SEED_GOAL) -> str:
    response = httpx.post(
        f"{server.base_url}/api/workflows", json={"goal": goal}, headers=headers, timeout=60
    )
    assert response.status_code == 201, response.text
    workflow_id: str = response.json()["workflowId"]
    return workflow_id


def sign_in(page: Page, email: str) -> None:
    page.goto("/dashboard/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).not_to_have_url(re.compile(r"/dashboard/login"))
