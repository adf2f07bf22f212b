"""The Content-Security-Policy in Chromium: no page of ours breaks it (issue 17, Must show).

Every main page is opened, signed in (and the email-link and sign-in pages signed out), in a
browser that reports each CSP violation: the ``securitypolicyviolation`` event of every
document, and Chromium's console messages about the policy. A last check proves the listener
works: a style attribute set by hand on one of our pages is reported.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import httpx
import pytest
from playwright.sync_api import ConsoleMessage, Page, expect

from tests.support.accounts import new_email, signup_sync
from tests.support.browser import Server, sign_in
from tests.support.waiting import wait_until_sync
from tests.support.workflows import GOAL, create_workflow_sync

pytestmark = [pytest.mark.browser, pytest.mark.processes, pytest.mark.timeout(240)]

# Every document reports its violations on the console, where the page listener records them.
REPORT_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (event) => {
  console.error(`CSP violation: ${event.violatedDirective} blocked ${event.blockedURI || "inline"}`
    + ` at ${event.sourceFile}:${event.lineNumber}`);
});
"""
CSP_MESSAGE = re.compile(r"CSP violation|Content Security Policy", re.IGNORECASE)
# ReDoc's bundle always asks its vendor's CDN for a logo; the policy refusing it is the policy
# working (apidoc/pages.py), and ReDoc then leaves the logo out. Nothing else is excused.
VENDOR_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"


def watch(page: Page, violations: list[str]) -> Page:
    page.context.add_init_script(REPORT_VIOLATIONS)

    def on_console(message: ConsoleMessage) -> None:
        excused = page.url.endswith("/redoc") and VENDOR_LOGO in message.text
        if CSP_MESSAGE.search(message.text) and not excused:
            violations.append(f"{page.url}: {message.text}")

    page.on("console", on_console)
    return page


def mailbox_link(page: Page, fragment: str) -> str:
    """The first link in the dev mailbox whose address contains ``fragment``."""
    page.goto("/dashboard/mailbox")
    link = page.locator(f"a[href*='{fragment}']").first
    expect(link).to_be_attached()
    href = link.get_attribute("href")
    assert href is not None
    return href


def visit(page: Page, path: str) -> None:
    page.goto(path)
    page.wait_for_load_state("networkidle")


def test_no_page_breaks_the_content_security_policy(
    server: Server, api: httpx.Client, new_page: Callable[..., Page]
) -> None:
    owner = signup_sync(api, new_email("csp"))
    draft = create_workflow_sync(api, owner, GOAL)
    workflow_id = draft["workflowId"]
    active = create_workflow_sync(api, owner, GOAL)["workflowId"]
    activated = api.post(f"/api/workflows/{active}/activate", headers=owner.headers)
    assert activated.status_code == 200, activated.text
    run_id = activated.json()["workflowRuns"][0]["id"]
    invited = api.post(
        f"/api/teams/{owner.team_id}/invitations",
        json={"email": new_email("invitee"), "role": "member"},
        headers=owner.headers,
    )
    assert invited.status_code == 201

    def paused() -> bool:
        run = api.get(f"/api/workflows/{active}/runs/{run_id}", headers=owner.headers).json()
        return bool(run["status"] == "awaiting_approval")

    wait_until_sync(paused, "run 1 to wait for approval", timeout=60)

    violations: list[str] = []
    page = watch(new_page(), violations)
    for path in ("/dashboard/login", "/dashboard/signup"):
        visit(page, path)
    sign_in(page, owner.email)
    for path in (
        "/dashboard",
        "/dashboard/workflows/new",
        f"/dashboard/workflows/{workflow_id}",
        f"/dashboard/workflows/{workflow_id}/plan",
        f"/dashboard/workflows/{active}",
        f"/dashboard/workflows/{active}/runs/{run_id}",
        "/dashboard/team",
        "/dashboard/memory",
        "/dashboard/mailbox",
        "/dashboard/workflows/no-such-workflow",
        "/docs",
        "/redoc",
    ):
        visit(page, path)
    plan_link = mailbox_link(page, f"/api/workflows/{workflow_id}/approve?token=")
    step_link = mailbox_link(page, "/api/workflows/resume?token=")
    invitation = mailbox_link(page, "/dashboard/invitations/")

    # The email-link pages, as someone who is not signed in opens them.
    stranger = watch(new_page(), violations)
    for link in (plan_link, step_link, step_link.replace("action=approve", "action=reject")):
        visit(stranger, link)
        expect(stranger.locator("form").first).to_be_visible()
    visit(stranger, invitation)
    expect(stranger.get_by_role("heading", name=re.compile("^Join"))).to_be_visible()
    visit(stranger, "/dashboard/invitations/not-a-token")

    assert not violations, "\n".join(violations)

    # The listener works: a style attribute set by hand is blocked and reported.
    page.goto("/dashboard")
    page.evaluate("document.body.setAttribute('style', 'background: red')")
    wait_until_sync(lambda: bool(violations), "the CSP violation to be reported", timeout=10)
    assert "style-src" in violations[0], violations
