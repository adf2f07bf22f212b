"""Approvals as people live in them, in Chromium against the real service with a real SMTP
server (issue 18, Must show): a phone, signed out, decides from the email and lands on a page
that says what happened; the inbox decides two steps of two workflows; an approver edits the
post before approving and the edited text is what is kept, byte for byte.

``SIGNOFF_DOCS_SCREENSHOTS=1`` refreshes docs/screenshots/{inbox,decision-result,edit-then-
approve}.png.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.support.accounts import Account, signup_sync
from tests.support.browser import Server, doc_shot, running_server, sign_in
from tests.support.smtp import FakeSmtpServer, running_smtp_server
from tests.support.waiting import wait_until_sync
from tests.support.workflows import create_workflow_sync, wait_for_run_sync

pytestmark = [pytest.mark.browser, pytest.mark.processes, pytest.mark.timeout(240)]

RUN_TIMEOUT = 30.0
PHONE = {
    "viewport": {"width": 390, "height": 844},
    "is_mobile": True,
    "has_touch": True,
    "user_agent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
}


@pytest.fixture(scope="module")
def smtp() -> Iterator[FakeSmtpServer]:
    with running_smtp_server() as server:
        yield server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, smtp: FakeSmtpServer) -> Iterator[Server]:
    """As tests/browser/conftest.py's, but emails go out by SMTP (no dev mailbox): the links
    are taken from what a person's mail client would receive."""
    workdir = tmp_path_factory.mktemp("approvals")
    with running_server(workdir, smtp_url=smtp.url, mail_poll_seconds=0.2) as server:
        yield server


def paused(api: httpx.Client, account: Account, workflow_id: str) -> dict[str, Any]:
    """Approve the plan (run 1 starts) and wait for the run to pause at its post."""
    response = api.post(f"/api/workflows/{workflow_id}/activate", headers=account.headers)
    assert response.status_code == 200, response.text
    run_id = response.json()["workflowRuns"][0]["id"]
    return wait_for(api, account, workflow_id, run_id, "awaiting_approval")


def wait_for(
    api: httpx.Client, account: Account, workflow_id: str, run_id: int, status: str
) -> dict[str, Any]:
    return wait_for_run_sync(api, account, workflow_id, run_id, status, timeout=RUN_TIMEOUT)


def mail_to(smtp: FakeSmtpServer, address: str, subject: str) -> EmailMessage:
    def arrived() -> EmailMessage | None:
        found = [
            message
            for message in list(smtp.messages)
            if message["To"] == address and subject in str(message["Subject"])
        ]
        return found[-1] if found else None

    return wait_until_sync(arrived, f"{subject!r} to {address}", timeout=RUN_TIMEOUT)


def link_in(message: EmailMessage, server: Server, needle: str) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    found = re.findall(re.escape(server.base_url) + r"/\S+", str(part.get_content()))
    [url] = [url for url in found if needle in url]
    return url.removeprefix(server.base_url)


def test_a_phone_signed_out_approves_from_the_email_and_sees_what_happens_next(
    server: Server, smtp: FakeSmtpServer, api: httpx.Client, new_page: Callable[..., Page]
) -> None:
    owner = signup_sync(api)
    admin = signup_sync(api)
    workflow = create_workflow_sync(api, owner)
    # An admin of the team gets an approval email with links of their own.
    invite = api.post(
        f"/api/teams/{owner.team_id}/invitations",
        json={"email": admin.email, "role": "admin"},
        headers=owner.headers,
    )
    assert invite.status_code == 201, invite.text
    accept = link_in(mail_to(smtp, admin.email, "invit"), server, "/invitations/")
    page = new_page()
    sign_in(page, admin.email)
    page.goto(accept)
    page.get_by_role("button", name=re.compile("Accept|Join")).click()
    run = paused(api, owner, workflow["workflowId"])
    step = run["steps"][run["currentStepIndex"]]

    owner_mail = mail_to(smtp, owner.email, "Approval needed")
    admin_mail = mail_to(smtp, admin.email, "Approval needed")
    approve = link_in(owner_mail, server, "action=approve")
    assert approve != link_in(admin_mail, server, "action=approve")  # links of their own

    phone = new_page(**PHONE)
    phone.goto(approve)
    expect(phone.get_by_role("heading", name="Approve this output?")).to_be_visible()
    phone.get_by_role("button", name="Approve", exact=True).click()
    expect(phone).to_have_url(f"{server.base_url}/dashboard/workflows/{workflow['workflowId']}")
    expect(phone.get_by_role("heading", name="Decision recorded")).to_be_visible()
    expect(phone.locator(".result-text")).to_contain_text(
        f"Approved step {step['stepIndex'] + 1} of run 1"
    )
    expect(phone.locator(".result-text")).to_contain_text("the run is complete")
    expect(phone.get_by_role("link", name="Sign in to open the workflow")).to_be_visible()
    width = phone.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1], f"the result page is {width[0]} px wide on a {width[1]} px phone"
    doc_shot(phone, "decision-result")
    done = wait_for(api, owner, workflow["workflowId"], run["id"], "completed")
    assert done["steps"][step["stepIndex"]]["output"] == step["output"]
    # Without the notice (a later visit), the page asks to sign in, as before.
    phone.reload()
    expect(phone).to_have_url(re.compile(r"/dashboard/login"))


def test_the_inbox_decides_two_steps_of_two_workflows(
    server: Server, api: httpx.Client, new_page: Callable[..., Page]
) -> None:
    owner = signup_sync(api)
    first = create_workflow_sync(api, owner)["workflowId"]
    second = create_workflow_sync(api, owner, "Write an X post about our new office in Lyon")[
        "workflowId"
    ]
    first_run = paused(api, owner, first)
    second_run = paused(api, owner, second)

    page = new_page()
    sign_in(page, owner.email)
    count = page.locator("#nav-inbox .count")
    expect(count).to_have_text("2")
    page.get_by_role("link", name=re.compile(r"^Approvals")).click()
    expect(page).to_have_url(re.compile(r"/dashboard/inbox$"))
    items = page.locator("article.inbox-item[data-inbox-kind='step']")
    expect(items).to_have_count(2)
    # Oldest first: the first workflow's run paused first.
    expect(items.nth(0)).to_have_attribute("data-workflow-id", first)
    doc_shot(page, "inbox")

    items.nth(0).get_by_role("button", name="Approve", exact=True).click()
    expect(page).to_have_url(re.compile(r"/dashboard/inbox$"))
    expect(page.locator(".notice").first).to_contain_text("Approved")
    expect(count).to_have_text("1")
    remaining = page.locator(f"article.inbox-item[data-workflow-id='{second}']")
    remaining.get_by_label("Feedback").fill("Say which floor the office is on")
    remaining.get_by_role("button", name="Request changes").click()
    expect(page.locator(".notice").first).to_contain_text("Changes requested")

    assert wait_for(api, owner, first, first_run["id"], "completed")["status"] == "completed"
    revised = wait_for(api, owner, second, second_run["id"], "awaiting_approval")
    assert revised["steps"][revised["currentStepIndex"]]["attempt"] == 2
    # The revision comes back to the inbox by itself (live), with the diff between attempts.
    expect(count).to_have_text("1", timeout=RUN_TIMEOUT * 1000)
    expect(page.locator(f"article.inbox-item[data-workflow-id='{second}'] .diff")).to_be_visible(
        timeout=RUN_TIMEOUT * 1000
    )


EDITED = "Our spring launch is here 🌱\n\n  Three things changed — and “why” matters.\n#Launch  "


def test_edit_then_approve_keeps_the_edited_text_byte_for_byte(
    server: Server, api: httpx.Client, new_page: Callable[..., Page]
) -> None:
    owner = signup_sync(api)
    workflow_id = create_workflow_sync(api, owner)["workflowId"]
    # A step after the post, so the next step's conversation shows what it was given.
    extra = {
        "description": "Summarise the approved post in one sentence",
        "toolName": "llm_response",
        "toolInput": {},
        "requiresApproval": False,
    }
    edited_plan = api.post(
        f"/api/workflows/{workflow_id}/steps", json={"steps": [extra]}, headers=owner.headers
    )
    assert edited_plan.status_code == 200, edited_plan.text
    run = paused(api, owner, workflow_id)
    post_index = run["currentStepIndex"]
    model_text = run["steps"][post_index]["output"]

    page = new_page()
    sign_in(page, owner.email)
    page.goto(f"/dashboard/workflows/{workflow_id}/runs/{run['id']}")
    page.get_by_text("Edit the post before approving").click()
    page.get_by_label("Post text").fill(EDITED)
    page.get_by_role("button", name="Approve", exact=True).click()
    expect(page.locator(".notice").first).to_contain_text("Approved with your edits")
    done = wait_for(api, owner, workflow_id, run["id"], "completed")

    post = done["steps"][post_index]
    assert post["output"] == EDITED
    assert post["modelOutput"] == model_text
    assets = api.get(f"/api/assets?runId={run['id']}&type=social_post", headers=owner.headers)
    [asset] = assets.json()
    assert (asset["status"], asset["content"]) == ("final", EDITED)
    # The conversation records the edit, before the next step's message: what it was given.
    texts = [m["text"] or "" for m in done["messages"] if m["role"] == "user"]
    edit_at = next(i for i, text in enumerate(texts) if "edited the output" in text)
    assert f"\n\n{EDITED}\n\n" in texts[edit_at]
    assert texts[edit_at + 1].startswith(f"Step {post_index + 2} of")

    # The run page shows the model's version against the approved one.
    page.reload()
    diff = page.locator(f"[data-step-index='{post_index}'] .diff")
    expect(diff).to_be_visible()
    expect(diff.locator("ins").first).to_be_visible()
    expect(page.locator(f"[data-step-index='{post_index}'] .edited")).to_be_visible()
    diff.scroll_into_view_if_needed()
    doc_shot(page, "edit-then-approve")
