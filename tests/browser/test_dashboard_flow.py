"""The dashboard as a person uses it, in Chromium, against the real service (issue 8, Must show).

Sign up → draft a workflow → the dev mailbox → the approval link (signed in: decides at once;
another browser: a confirm page and a button) → run 1 running → its post step awaiting approval,
seen without reloading → request changes → approve → completed, the revised post shown. Stopping
a run; another team's workflow; a tampered CSRF token.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import httpx
import pytest
from playwright.sync_api import Locator, Page, expect

from tests.support.accounts import PASSWORD, new_email, signup_sync
from tests.support.browser import Server, shot, sign_in
from tests.support.workflows import SEED_GOAL, create_workflow_sync

# The first test of a worker also starts the service and Chromium (seconds; more on a busy
# machine): more room than the suite's 120 s per test.
pytestmark = [pytest.mark.browser, pytest.mark.processes, pytest.mark.timeout(240)]

# Long enough for a few offline model calls on a busy machine; only a failure waits this long.
RUN_TIMEOUT_MS = 30_000
FEEDBACK = "mention the open-source models too"
# Plain groups only: Playwright matches URLs with JavaScript regular expressions.
WORKFLOW_URL = re.compile(r"/dashboard/workflows/([0-9A-Za-z_-]+)$")
RUN_URL = re.compile(r"/dashboard/workflows/[^/]+/runs/\d+$")


def sign_up(page: Page, email: str, name: str) -> None:
    page.goto("/dashboard/login")
    page.get_by_role("link", name="Create an account").click()
    page.get_by_label("Name").fill(name)
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(page).to_have_url(re.compile(r"/dashboard$"))


def draft_workflow(page: Page, goal: str = SEED_GOAL, schedule: str = "") -> str:
    """The new workflow form; returns the new workflow's id (its page is open)."""
    page.get_by_role("link", name="New workflow").click()
    page.get_by_label("Goal").fill(goal)
    if schedule:
        page.get_by_label("Schedule").fill(schedule)
        # The preview follows what is typed, in words, without submitting anything.
        expect(page.locator("#schedule-preview")).to_contain_text("Monday")
    shot(page, "new-workflow")
    page.get_by_role("button", name="Draft plan").click()
    expect(page).to_have_url(WORKFLOW_URL, timeout=RUN_TIMEOUT_MS)
    match = WORKFLOW_URL.search(page.url)
    assert match is not None
    return match[1]


def plan_link_from_mailbox(page: Page, workflow_id: str) -> str:
    """The "Approve & Activate" link of the plan email about ``workflow_id``, as the dev mailbox
    shows it (newest first)."""
    page.get_by_role("link", name="Mailbox").click()
    mail = page.locator("article").filter(
        has=page.get_by_role("heading", name=re.compile(r"^Approve your workflow plan"))
    )
    expect(mail.first).to_be_visible()
    link = mail.first.locator(f"a[href*='/api/workflows/{workflow_id}/approve?token=']").first
    expect(link).to_be_visible()
    href = link.get_attribute("href")
    assert href is not None
    return href


def mark_page(page: Page) -> None:
    """A variable that only this document has: gone if the page reloads or navigates."""
    page.evaluate("window.__signoffTestMarker = 'still here'")


def assert_not_reloaded(page: Page) -> None:
    assert page.evaluate("window.__signoffTestMarker") == "still here", "the page reloaded"


def run_status(page: Page) -> Locator:
    return page.locator("[data-run-status]").first


def test_sign_up_draft_approve_by_link_review_and_complete(
    server: Server, new_page: Callable[..., Page]
) -> None:
    page = new_page()
    email = new_email("owner")
    sign_up(page, email, "Olivia Owner")
    workflow_id = draft_workflow(page, schedule="0 9 * * 1")
    # The drafted plan, with its approval-gated post step, and the email notice.
    expect(page.get_by_text("format_post").first).to_be_visible()
    expect(page.get_by_text(email).first).to_be_visible()
    shot(page, "workflow-draft")

    href = plan_link_from_mailbox(page, workflow_id)
    shot(page, "mailbox")

    # (a) Signed in as the owner, the link decides at once and lands on the workflow page.
    page.goto(href)
    expect(page).to_have_url(f"{server.base_url}/dashboard/workflows/{workflow_id}")
    run_link = page.get_by_role("link", name="Run 1")
    expect(run_link).to_be_visible()
    expect(run_status(page)).to_have_attribute("data-run-status", "running")
    expect(run_status(page)).to_have_text(re.compile("running"))

    # The run reaches its approval step while the page stays as it is (Server-Sent Events).
    mark_page(page)
    expect(run_status(page)).to_have_attribute(
        "data-run-status", "awaiting_approval", timeout=RUN_TIMEOUT_MS
    )
    expect(run_status(page)).to_have_text(re.compile("awaiting approval"))
    assert_not_reloaded(page)
    shot(page, "workflow-awaiting-approval")

    page.get_by_role("link", name="Review").click()
    expect(page).to_have_url(RUN_URL)
    run_id = page.url.rsplit("/", 1)[1]
    expect(run_status(page)).to_have_attribute("data-run-status", "awaiting_approval")
    waiting = page.locator("[data-step-status='awaiting_approval']")
    expect(waiting).to_have_count(1)
    post = page.locator(".post").first
    expect(post).to_be_visible()
    first_draft = post.inner_text()
    assert FEEDBACK.lower() not in first_draft.lower()
    shot(page, "run-awaiting-approval")

    # Request changes: the step runs again with the feedback (one model call, OFFLINE_DELAY
    # seconds), and the page follows it live.
    page.get_by_label("Feedback").fill(FEEDBACK)
    page.get_by_role("button", name="Request changes").click()
    expect(page).to_have_url(RUN_URL)
    mark_page(page)
    expect(page.locator("[data-step-status='awaiting_approval']")).to_have_count(0)
    expect(page.locator("[data-step-status='awaiting_approval']")).to_have_count(
        1, timeout=RUN_TIMEOUT_MS
    )
    expect(run_status(page)).to_have_attribute("data-run-status", "awaiting_approval")
    revised = page.locator(".post").first
    expect(revised).to_contain_text(re.compile(re.escape(FEEDBACK), re.IGNORECASE))
    assert_not_reloaded(page)

    page.get_by_role("button", name="Approve", exact=True).click()
    expect(page).to_have_url(RUN_URL)
    expect(run_status(page)).to_have_attribute(
        "data-run-status", "completed", timeout=RUN_TIMEOUT_MS
    )
    expect(run_status(page)).to_have_text(re.compile("completed"))
    expect(page.locator("[data-step-status]:not([data-step-status='completed'])")).to_have_count(0)
    final = page.locator(".post").first
    expect(final).to_contain_text(re.compile(re.escape(FEEDBACK), re.IGNORECASE))
    shot(page, "run-completed")

    # The list shows the workflow and its latest run.
    page.get_by_role("link", name="Workflows").first.click()
    row = page.locator("tr, li, article").filter(has=page.locator(f"a[href$='{workflow_id}']"))
    expect(row.first).to_contain_text("completed")
    shot(page, "workflows")

    # The account pages: invite a colleague, teach the team's core memory.
    page.get_by_role("link", name="Team").click()
    expect(page.get_by_text(email).first).to_be_visible()
    colleague = new_email("colleague")
    page.get_by_label("Email").fill(colleague)
    page.get_by_label("Role").select_option("admin")
    page.get_by_role("button", name="Invite").click()
    expect(page.get_by_text(colleague).first).to_be_visible()
    shot(page, "team")
    page.get_by_role("link", name="Memory").click()
    page.get_by_label("Core memory").fill("We write for founders; no hype, one emoji at most.")
    page.get_by_role("button", name="Save").click()
    page.reload()
    expect(page.get_by_label("Core memory")).to_have_value(re.compile("no hype"))
    shot(page, "memory")

    # Readable on a phone: no page is wider than the screen (wide tables scroll inside it).
    run_url = f"/dashboard/workflows/{workflow_id}/runs/{run_id}"
    page.set_viewport_size({"width": 390, "height": 844})
    for path in (
        "/dashboard",
        "/dashboard/workflows/new",
        f"/dashboard/workflows/{workflow_id}",
        run_url,
        "/dashboard/runs",
        "/dashboard/mailbox",
        "/dashboard/memory",
        "/dashboard/team",
    ):
        page.goto(path)
        width = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
        assert width[0] <= width[1], f"{path} is {width[0]} px wide on a {width[1]} px screen"
    page.goto(run_url)
    shot(page, "phone-run")


def test_links_in_another_browser_ask_first_and_a_stopped_run_stays_stopped(
    server: Server, new_page: Callable[..., Page]
) -> None:
    page = new_page()
    email = new_email("owner")
    sign_up(page, email, "Sam Stopper")
    workflow_id = draft_workflow(page)
    href = plan_link_from_mailbox(page, workflow_id)

    # (b) A browser with no session: a confirm page; nothing acts on the link by itself.
    elsewhere = new_page()
    elsewhere.goto(href)
    expect(elsewhere.get_by_role("heading", name="Approve this plan?")).to_be_visible()
    assert elsewhere.locator("script:not([src])").count() == 0
    page.goto(f"/dashboard/workflows/{workflow_id}")
    expect(page.get_by_role("link", name="Run 1")).to_have_count(0)
    shot(elsewhere, "link-plan-confirm")
    elsewhere.get_by_role("button", name=re.compile("Approve")).click()
    # Decided; the workflow's address says so (issue 18), then asks this browser to sign in.
    expect(elsewhere).to_have_url(f"{server.base_url}/dashboard/workflows/{workflow_id}")
    expect(elsewhere.locator(".result-text")).to_contain_text("Plan approved")
    elsewhere.get_by_role("link", name="Sign in to open the workflow").click()
    expect(elsewhere).to_have_url(re.compile(r"/dashboard/login\?next="))
    elsewhere.get_by_label("Email").fill(email)
    elsewhere.get_by_label("Password").fill(PASSWORD)
    elsewhere.get_by_role("button", name="Sign in").click()
    expect(elsewhere).to_have_url(f"{server.base_url}/dashboard/workflows/{workflow_id}")
    expect(run_status(elsewhere)).to_have_attribute(
        "data-run-status", re.compile("running|awaiting_approval")
    )

    # The post step's email: its link, too, only shows a page with a button.
    page.goto(f"/dashboard/workflows/{workflow_id}")
    expect(run_status(page)).to_have_attribute(
        "data-run-status", "awaiting_approval", timeout=RUN_TIMEOUT_MS
    )
    page.get_by_role("link", name="Mailbox").click()
    step_mail = page.locator("article").filter(
        has=page.get_by_role("heading", name=re.compile(r"^Approval needed"))
    )
    step_link = step_mail.first.locator("a[href*='/api/workflows/resume?'][href*='action=approve']")
    href = step_link.first.get_attribute("href")
    assert href is not None
    third = new_page()
    third.goto(href)
    expect(third.get_by_role("heading", name="Approve this output?")).to_be_visible()
    assert third.locator("script:not([src])").count() == 0

    # Stop the run from its page, before anyone decides.
    page.goto(f"/dashboard/workflows/{workflow_id}")
    page.get_by_role("link", name="Run 1").click()
    expect(page).to_have_url(RUN_URL)
    expect(run_status(page)).to_have_attribute("data-run-status", "awaiting_approval")
    # Stopping asks first; dismissing the question changes nothing.
    page.once("dialog", lambda dialog: dialog.dismiss())
    page.get_by_role("button", name="Stop run").click()
    expect(run_status(page)).to_have_attribute("data-run-status", "awaiting_approval")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Stop run").click()
    expect(run_status(page)).to_have_attribute("data-run-status", "failed")
    expect(page.get_by_text("Stopped by user").first).to_be_visible()
    expect(page.get_by_role("button", name="Stop run")).to_have_count(0)
    shot(page, "run-stopped")

    # The waiting step's link no longer decides anything.
    third.get_by_role("button", name="Approve", exact=True).click()
    expect(third.get_by_role("heading", name="This link can't be used")).to_be_visible()
    page.reload()
    expect(run_status(page)).to_have_attribute("data-run-status", "failed")


def test_another_teams_workflow_is_not_found(
    api: httpx.Client, new_page: Callable[..., Page]
) -> None:
    owner = signup_sync(api, new_email("owner"))
    workflow_id = create_workflow_sync(api, owner, SEED_GOAL)["workflowId"]
    stranger = signup_sync(api, new_email("stranger"))

    page = new_page()
    sign_in(page, stranger.email)
    response = page.goto(f"/dashboard/workflows/{workflow_id}")
    assert response is not None
    assert response.status == 404
    expect(page.get_by_role("heading", name=re.compile("not found", re.IGNORECASE))).to_be_visible()
    expect(page.get_by_text(SEED_GOAL)).to_have_count(0)


def test_without_javascript_a_refresh_link_stands_in_for_live_updates(
    server: Server, api: httpx.Client, new_page: Callable[..., Page]
) -> None:
    owner = signup_sync(api, new_email("owner"))
    workflow_id = create_workflow_sync(api, owner, SEED_GOAL)["workflowId"]
    page = new_page(java_script_enabled=False)
    sign_in(page, owner.email)
    page.goto(f"/dashboard/workflows/{workflow_id}")
    refresh = page.get_by_role("link", name="Refresh")
    expect(refresh).to_be_visible()
    refresh.click()
    expect(page).to_have_url(f"{server.base_url}/dashboard/workflows/{workflow_id}")


def test_a_form_with_a_tampered_csrf_token_changes_nothing(
    api: httpx.Client, new_page: Callable[..., Page]
) -> None:
    owner = signup_sync(api, new_email("owner"))
    page = new_page()
    sign_in(page, owner.email)
    page.get_by_role("link", name="New workflow").click()
    page.get_by_label("Goal").fill(SEED_GOAL)
    form = page.locator("form").filter(has=page.get_by_label("Goal"))
    token = form.locator("input[name='csrf_token']")
    token.evaluate("input => { input.value = input.value.slice(0, -2) + 'xx'; }")
    with page.expect_response(lambda r: r.request.method == "POST") as posted:
        page.get_by_role("button", name="Draft plan").click()
    assert posted.value.status == 403
    # Nothing was drafted.
    page.goto("/dashboard")
    expect(page.locator("a[href^='/dashboard/workflows/']:not([href$='/new'])")).to_have_count(0)
