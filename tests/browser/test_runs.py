"""Runs in Chromium against the real service (issue 18, Must show): a completed run rerun from
step 2 makes a new run whose step 1 is copied and whose steps 2.. run again; a search that could
not run (no provider configured) is a warning on its step that names the setting; the runs
list across workflows; times shown in the viewer's timezone."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.support.accounts import Account, new_email, signup_sync
from tests.support.browser import Server, doc_shot, sign_in
from tests.support.workflows import SEED_GOAL, create_workflow_sync, wait_for_run_sync

pytestmark = [pytest.mark.browser, pytest.mark.processes, pytest.mark.timeout(240)]

RUN_TIMEOUT = 30.0
RUN_URL = re.compile(r"/dashboard/workflows/[^/]+/runs/(\d+)$")


def run_of(api: httpx.Client, account: Account, workflow_id: str, run_id: int) -> dict[str, Any]:
    response = api.get(f"/api/workflows/{workflow_id}/runs/{run_id}", headers=account.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def wait_for(
    api: httpx.Client, account: Account, workflow_id: str, run_id: int, status: str
) -> dict[str, Any]:
    return wait_for_run_sync(api, account, workflow_id, run_id, status, timeout=RUN_TIMEOUT)


def completed_run(api: httpx.Client, account: Account) -> dict[str, Any]:
    """Run 1 of a new search → outline → post workflow, its post approved: completed."""
    workflow_id = create_workflow_sync(api, account, SEED_GOAL)["workflowId"]
    activated = api.post(f"/api/workflows/{workflow_id}/activate", headers=account.headers)
    assert activated.status_code == 200, activated.text
    run_id = activated.json()["workflowRuns"][0]["id"]
    wait_for(api, account, workflow_id, run_id, "awaiting_approval")
    decided = api.post(
        f"/api/workflows/{workflow_id}/runs/{run_id}/decision",
        json={"action": "approve"},
        headers=account.headers,
    )
    assert decided.status_code == 200, decided.text
    return wait_for(api, account, workflow_id, run_id, "completed")


def test_a_search_without_a_provider_is_a_warning_and_a_rerun_from_step_2(
    server: Server, api: httpx.Client, new_page: Callable[..., Page]
) -> None:
    owner = signup_sync(api, new_email("owner"))
    source = completed_run(api, owner)
    workflow_id = source["workflowId"]
    page = new_page(timezone_id="Asia/Tokyo", locale="en-GB")
    sign_in(page, owner.email)
    page.goto(f"/dashboard/workflows/{workflow_id}/runs/{source['id']}")

    # The search step completed, but not as a plain success: a warning that says why and
    # which setting configures a provider.
    search = page.locator('li[data-step-index="0"]')
    expect(search.locator(".status")).to_have_text("completed with warnings")
    warning = search.get_by_role("note")
    expect(warning).to_contain_text("No web search provider is configured")
    expect(warning.locator("code")).to_have_text("SIGNOFF_SEARCH_PROVIDER")
    expect(page.locator('li[data-step-index="1"] .status')).to_have_text("completed")
    expect(page.locator('li[data-step-index="1"]').get_by_role("note")).to_have_count(0)
    # Times in the viewer's timezone (Tokyo: UTC+9), with how long ago; UTC in the title.
    started = page.locator("#run-summary time[data-local]").first
    expect(started).to_contain_text(re.compile(r"(ago|now)\)$"))
    utc = started.get_attribute("title") or ""
    assert utc.endswith("UTC")
    hour, minute = utc.split(" ")[1].split(":")
    assert f"{(int(hour) + 9) % 24:02d}:{minute}" in (started.text_content() or "")
    doc_shot(page, "run-warning-rerun")

    # Rerun from step 2: a new run, its page opens.
    page.get_by_label("Rerun from").select_option("1")
    page.get_by_role("button", name="Rerun", exact=True).click()
    expect(page).to_have_url(RUN_URL)
    expect(page.get_by_role("status").first).to_contain_text(
        "Run 2 started from step 2; step 1 copied from run 1."
    )
    match = RUN_URL.search(page.url)
    assert match is not None
    rerun_id = int(match[1])
    assert rerun_id != source["id"]
    # Seen live on the page, without a reload: step 3 waits for approval again.
    expect(page.locator("[data-run-status]").first).to_have_attribute(
        "data-run-status", "awaiting_approval", timeout=RUN_TIMEOUT * 1000
    )
    expect(page.locator('li[data-step-index="0"]')).to_contain_text("Copied from the run")

    # Checked through the API: step 1 is the source's (same output, same times: not run
    # again); steps 2.. ran again, after the source had finished.
    rerun = run_of(api, owner, workflow_id, rerun_id)
    assert rerun["runNumber"] == 2
    assert rerun["rerunOfRunId"] == source["id"]
    assert rerun["rerunFromStepIndex"] == 1
    first, second, third = rerun["steps"]
    assert first["status"] == "completed"
    assert first["output"] == source["steps"][0]["output"]
    assert first["startedAt"] == source["steps"][0]["startedAt"]
    assert first["finishedAt"] == source["steps"][0]["finishedAt"]
    assert first["warnings"] == source["steps"][0]["warnings"]
    assert second["status"] == "completed"
    assert second["startedAt"] > source["finishedAt"]
    assert third["status"] == "awaiting_approval"
    step_messages = [
        message["text"]
        for message in rerun["messages"]
        if message["kind"] == "text" and message["role"] == "user"
    ]
    assert sum(text.startswith("Step 2 of 3: ") for text in step_messages) == 1
    assert rerun["messages"][0] == source["messages"][0]  # the copied opening

    # The runs list across workflows shows both, the rerun marked, and filters by status.
    page.get_by_role("link", name="Runs", exact=True).click()
    expect(page).to_have_url(f"{server.base_url}/dashboard/runs")
    expect(page.get_by_role("link", name="Runs", exact=True)).to_have_attribute(
        "aria-current", "page"
    )
    expect(page.locator("tr[data-run-id]")).to_have_count(2)
    expect(page.locator(f'tr[data-run-id="{rerun_id}"]')).to_contain_text("rerun from step 2")
    doc_shot(page, "runs")
    page.get_by_label("Status").select_option("completed")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("tr[data-run-id]")).to_have_count(1)
    expect(page.locator(f'tr[data-run-id="{source["id"]}"]')).to_be_visible()
