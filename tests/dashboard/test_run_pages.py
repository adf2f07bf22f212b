"""The runs list across workflows and the run page's honest states: a tool that could not do
its job is a warning that names the setting; rerun and retry buttons start new runs; stopped
runs say so; times carry their UTC value for the browser to localise; the navigation marks the
current page and shows who is signed in."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.support.pages import Browser, new_account
from tests.support.workflows import GOAL, SEED_GOAL, paused_run, wait_for_run

pytestmark = pytest.mark.postgres


async def test_a_search_that_could_not_run_is_a_warning_with_its_setting(
    client: httpx.AsyncClient, browser: Browser
) -> None:
    async with browser() as page:
        account, _csrf = await new_account(client, page)
        paused = await paused_run(client, account, SEED_GOAL)
        search = paused["steps"][0]
        assert search["toolName"] == "web_search"
        assert search["status"] == "completed"
        assert search["warnings"] == [
            {
                "code": "search_not_configured",
                "message": search["warnings"][0]["message"],
                "setting": "SIGNOFF_SEARCH_PROVIDER",
            }
        ]
        assert "No web search provider is configured" in search["warnings"][0]["message"]
        assert paused["steps"][1]["warnings"] == []  # the outline had nothing to complain about
        shown = await page.get(f"/dashboard/workflows/{paused['workflowId']}/runs/{paused['id']}")
        first = shown.text.split('data-step-index="0"', 1)[1].split("</li>", 1)[0]
        assert 'data-step-warnings="1"' in first
        assert "completed with warnings" in first
        assert "No web search provider is configured" in first
        assert "<code>SIGNOFF_SEARCH_PROVIDER</code>" in first
        second = shown.text.split('data-step-index="1"', 1)[1].split("</li>", 1)[0]
        assert "Warning" not in second
        assert "completed with warnings" not in second
        assert "1 step completed with warnings" in shown.text


async def test_rerun_and_retry_buttons(client: httpx.AsyncClient, browser: Browser) -> None:
    async with browser() as page:
        account, csrf = await new_account(client, page)
        paused = await paused_run(client, account, SEED_GOAL)
        workflow_id, run_id = paused["workflowId"], paused["id"]
        base = f"/dashboard/workflows/{workflow_id}/runs/{run_id}"
        shown = (await page.get(base)).text
        assert "/rerun" not in shown
        assert "/retry" not in shown
        await page.post(f"{base}/stop", data={"csrf_token": csrf, "confirmed": "1"})
        stopped = (await page.get(base)).text
        assert "Stopped by user" in stopped
        assert "Why it failed" not in stopped
        assert "Retry from step 3" in stopped
        # Rerun from any step up to the first one that did not complete.
        options = re.findall(r'<option value="(\d+)">step', stopped)
        assert options == ["0", "1", "2"]
        started = await page.post(
            f"{base}/rerun", data={"csrf_token": csrf, "from_step_index": "1"}
        )
        assert started.status_code == 303
        new_id = int(started.headers["location"].rsplit("/", 1)[1])
        rerun = await wait_for_run(client, account, workflow_id, new_id, "awaiting_approval")
        assert rerun["rerunOfRunId"] == run_id
        assert rerun["rerunFromStepIndex"] == 1
        page_text = (await page.get(started.headers["location"])).text
        assert "Run 2 started from step 2; step 1 copied from run 1." in page_text
        assert "Copied from the run this one reruns" in page_text
        # A second start while the rerun is active: the page says why, nothing started.
        busy = await page.post(f"{base}/retry", data={"csrf_token": csrf})
        assert busy.status_code == 409
        assert "already active" in busy.text
        runs = await client.get(f"/api/workflows/{workflow_id}/runs", headers=account.headers)
        assert len(runs.json()["runs"]) == 2


async def test_the_runs_page_filters_and_marks_the_nav(
    client: httpx.AsyncClient, browser: Browser
) -> None:
    async with browser() as page:
        account, _csrf = await new_account(client, page)
        seed = await paused_run(client, account, SEED_GOAL)
        launch = await paused_run(client, account, GOAL)
        everything = await page.get("/dashboard/runs")
        assert everything.status_code == 200
        assert everything.text.count("data-run-id=") == 2
        assert '<a href="/dashboard/runs" aria-current="page">Runs</a>' in everything.text
        assert f"Signed in as {account.email}" in everything.text
        assert re.search(
            r'<time datetime="[^"]+\+00:00" data-local>\d{4}-\d\d-\d\d', everything.text
        )
        for query, expected in (
            ({"workflow": launch["workflowId"]}, {launch["id"]}),
            ({"q": "ai news"}, {seed["id"]}),
            ({"status": "awaiting_approval"}, {seed["id"], launch["id"]}),
            ({"status": "completed"}, set()),
            ({"trigger": "manual"}, set()),
            ({"since": "2000-01-01", "until": "2000-01-02"}, set()),
            ({"since": "0001-01-01", "until": "9999-12-31"}, {seed["id"], launch["id"]}),
            ({"status": "nonsense"}, {seed["id"], launch["id"]}),  # not a choice: ignored
        ):
            shown = await page.get("/dashboard/runs", params=query)
            assert shown.status_code == 200
            found = {int(found) for found in re.findall(r'data-run-id="(\d+)"', shown.text)}
            assert found == expected, query
        assert (
            "No run matches these filters."
            in (await page.get("/dashboard/runs", params={"status": "completed"})).text
        )
        home = await page.get("/dashboard")
        assert '<a href="/dashboard" aria-current="page">Workflows</a>' in home.text
        assert 'aria-current="page">Runs' not in home.text
