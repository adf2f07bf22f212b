"""The workflow and run pages: each renders for its user, hides other teams' objects, refuses
forged forms and too-low roles, and re-renders invalid input with its problems."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from signoff.db import Database
from signoff.models import Role, Workflow
from signoff.workflows.service import RUNS_IN_DETAIL
from tests.support.accounts import join
from tests.support.db import stored
from tests.support.pages import Browser, draft_on_page, new_account, paused_run_on_pages
from tests.support.workflows import GOAL, wait_for_run

pytestmark = pytest.mark.postgres


async def state(database: Database, workflow_id: str) -> tuple[str, int, str | None]:
    workflow = await stored(database, Workflow, workflow_id)
    return workflow.status.value, workflow.plan_revision, workflow.schedule


async def test_new_workflow_drafts_the_plan_and_says_the_email_went_out(
    client: httpx.AsyncClient, browser: Browser, database: Database
) -> None:
    async with browser() as page:
        account, csrf = await new_account(client, page)
        form = await page.get("/dashboard/workflows/new")
        assert form.status_code == 200
        for control in ('for="goal">Goal<', 'for="schedule">Schedule', 'for="timezone">Timezone<'):
            assert control in form.text
        assert 'id="schedule-preview"' in form.text
        assert ">Draft plan</button>" in form.text

        workflow_id = await draft_on_page(
            page, csrf, schedule="0 9 * * MON", timezone="Europe/Paris"
        )
        shown = await page.get(f"/dashboard/workflows/{workflow_id}")
        assert shown.status_code == 200
        assert shown.headers["cache-control"] == "no-store"
        assert f"the approval link went to {account.email}" in shown.text
        assert "At 09:00, only on Monday (Europe/Paris)" in shown.text
        assert "format_post" in shown.text
        assert "Waits for approval" in shown.text
        assert ">Approve plan</button>" in shown.text
        # The notice is shown once.
        assert "approval link went to" not in (await page.get(shown.url.path)).text
        listing = await page.get("/dashboard")
        assert f'href="/dashboard/workflows/{workflow_id}"' in listing.text
        assert "Never ran" in listing.text
    assert await state(database, workflow_id) == ("draft", 1, "0 9 * * MON")


async def test_invalid_new_workflow_re_renders_with_its_problems(
    client: httpx.AsyncClient, browser: Browser, database: Database
) -> None:
    async with browser() as page:
        account, csrf = await new_account(client, page)
        bad = await page.post(
            "/dashboard/workflows",
            data={
                "goal": "  ",
                "schedule": "every monday",
                "timezone": "Mars/Olympus",
                "csrf_token": csrf,
            },
        )
        assert bad.status_code == 422
        assert 'aria-invalid="true"' in bad.text
        assert "every monday" in bad.text  # what was typed stays
        preview = await page.get(
            "/dashboard/schedule-preview", params={"schedule": "0 9 * * 1", "timezone": "UTC"}
        )
        assert preview.json()["valid"] is True
        assert preview.json()["text"].startswith("At 09:00, only on Monday (UTC). Next run: ")
        wrong = await page.get("/dashboard/schedule-preview", params={"schedule": "61 * * * *"})
        assert wrong.json()["valid"] is False
    listed = await client.get("/api/workflows", headers=account.headers)
    assert listed.json() == []


async def test_the_owner_approves_runs_and_decides_from_the_pages(
    client: httpx.AsyncClient, browser: Browser
) -> None:
    async with browser() as page:
        account, csrf = await new_account(client, page)
        workflow_id, run_id = await paused_run_on_pages(client, page, account, csrf)
        base = f"/dashboard/workflows/{workflow_id}"

        workflow_page = await page.get(base)
        assert 'data-run-status="awaiting_approval">awaiting approval<' in workflow_page.text
        assert f'href="{base}/runs/{run_id}">Run 1</a>' in workflow_page.text
        assert f'href="{base}/runs/{run_id}">Review</a>' in workflow_page.text

        run_page = await page.get(f"{base}/runs/{run_id}")
        assert run_page.status_code == 200
        assert run_page.headers["cache-control"] == "no-store"
        assert 'data-step-index="1" data-step-status="awaiting_approval"' in run_page.text
        assert 'class="post"' in run_page.text
        for control in (
            'name="note"',
            ">Approve</button>",
            ">Request changes</button>",
            ">Stop run</button>",
        ):
            assert control in run_page.text

        rejected = await page.post(
            f"{base}/runs/{run_id}/decision",
            data={"action": "reject", "note": "Mention the launch date", "csrf_token": csrf},
        )
        assert rejected.status_code == 303
        run = await wait_for_run(client, account, workflow_id, run_id, "awaiting_approval")
        assert run["steps"][1]["attempt"] == 2
        approved = await page.post(
            f"{base}/runs/{run_id}/decision", data={"action": "approve", "csrf_token": csrf}
        )
        assert approved.status_code == 303
        await wait_for_run(client, account, workflow_id, run_id, "completed")
        done = await page.get(f"{base}/runs/{run_id}")
        assert 'data-run-status="completed"' in done.text
        assert "that was the last step, so the run is complete" in done.text  # the notice
        assert 'class="post"' in done.text
        assert "Mention the launch date" in done.text  # the feedback, in the step log
        assert ">Stop run</button>" not in done.text

        again = await page.post(f"{base}/run", data={"csrf_token": csrf})
        assert again.status_code == 303
        second = int(again.headers["location"].rsplit("/", 1)[1])
        # A destructive form asks first (the page without JavaScript); nothing changes until
        # the question's own form, which carries confirmed, is sent.
        asked = await page.post(f"{base}/runs/{second}/stop", data={"csrf_token": csrf})
        assert asked.status_code == 200
        assert "Are you sure?" in asked.text
        assert 'name="confirmed" value="1"' in asked.text
        assert f'action="{base}/runs/{second}/stop"' in asked.text
        assert (
            await client.get(f"/api/workflows/{workflow_id}/runs/{second}", headers=account.headers)
        ).json()["status"] != "failed"
        stopped = await page.post(
            f"{base}/runs/{second}/stop", data={"csrf_token": csrf, "confirmed": "1"}
        )
        assert stopped.status_code == 303
        after = await page.get(f"{base}/runs/{second}")
        assert 'data-run-status="failed"' in after.text
        assert "Stopped by user" in after.text
        # Deciding an ended run is refused with a page that says why.
        late = await page.post(
            f"{base}/runs/{second}/decision", data={"action": "approve", "csrf_token": csrf}
        )
        assert late.status_code == 409
        assert "stopped" in late.text

        asked = await page.post(f"{base}/archive", data={"csrf_token": csrf})
        assert "Are you sure?" in asked.text
        assert ">Run now</button>" in (await page.get(base)).text
        archived = await page.post(f"{base}/archive", data={"csrf_token": csrf, "confirmed": "1"})
        assert archived.status_code == 303
        assert ">Run now</button>" not in (await page.get(base)).text


async def test_forms_without_the_csrf_token_change_nothing(
    client: httpx.AsyncClient, browser: Browser, database: Database
) -> None:
    async with browser() as page:
        account, csrf = await new_account(client, page)
        workflow_id = await draft_on_page(page, csrf)
        base = f"/dashboard/workflows/{workflow_id}"
        for path, data in (
            (f"{base}/activate", {}),
            (f"{base}/archive", {}),
            (f"{base}/schedule", {"schedule": "0 8 * * *"}),
            (f"{base}/plan", {"count": "1", "description-0": "x", "tool-0": "llm_response"}),
            ("/dashboard/workflows", {"goal": GOAL}),
        ):
            for token in (None, "forged"):
                body = {**data, **({"csrf_token": token} if token else {})}
                response = await page.post(path, data=body)
                assert response.status_code == 403, path
                assert "did not come from Signoff" in response.text
    assert await state(database, workflow_id) == ("draft", 1, None)
    listed = await client.get("/api/workflows", headers=account.headers)
    assert len(listed.json()) == 1


async def test_another_teams_objects_are_not_found(
    client: httpx.AsyncClient, browser: Browser, database: Database
) -> None:
    async with browser() as owner_page, browser() as outsider_page:
        owner, csrf = await new_account(client, owner_page)
        workflow_id, run_id = await paused_run_on_pages(client, owner_page, owner, csrf)
        _outsider, outsider_csrf = await new_account(client, outsider_page)
        base = f"/dashboard/workflows/{workflow_id}"
        for path in (base, f"{base}/runs/{run_id}", f"{base}/plan", f"{base}/events"):
            response = await outsider_page.get(path)
            assert response.status_code == 404, path
            assert "Not found" in response.text
            assert GOAL not in response.text
        for action in ("archive", f"runs/{run_id}/stop", f"runs/{run_id}/decision"):
            response = await outsider_page.post(
                f"{base}/{action}", data={"csrf_token": outsider_csrf, "action": "approve"}
            )
            assert response.status_code == 404, action
    run = await wait_for_run(client, owner, workflow_id, run_id, "awaiting_approval")
    assert run["steps"][1]["attempt"] == 1


async def test_members_see_the_state_but_cannot_decide(
    client: httpx.AsyncClient, browser: Browser, database: Database
) -> None:
    async with browser() as owner_page, browser() as member_page:
        owner, csrf = await new_account(client, owner_page)
        member, member_csrf = await new_account(client, member_page)
        await join(database, owner.team_id, member, Role.MEMBER)
        draft_id = await draft_on_page(owner_page, csrf)
        workflow_id, run_id = await paused_run_on_pages(client, owner_page, owner, csrf)

        plan = await member_page.get(f"/dashboard/workflows/{draft_id}")
        assert plan.status_code == 200
        assert ">Approve plan</button>" not in plan.text
        refused = await member_page.post(
            f"/dashboard/workflows/{draft_id}/activate", data={"csrf_token": member_csrf}
        )
        assert refused.status_code == 403
        assert "admin role" in refused.text

        run_page = await member_page.get(f"/dashboard/workflows/{workflow_id}/runs/{run_id}")
        assert 'data-run-status="awaiting_approval"' in run_page.text
        assert 'class="post"' in run_page.text
        assert ">Approve</button>" not in run_page.text
        assert ">Request changes</button>" not in run_page.text
        decision = await member_page.post(
            f"/dashboard/workflows/{workflow_id}/runs/{run_id}/decision",
            data={"action": "approve", "csrf_token": member_csrf},
        )
        assert decision.status_code == 403
    assert (await state(database, draft_id))[0] == "draft"
    run = await wait_for_run(client, owner, workflow_id, run_id, "awaiting_approval")
    assert run["steps"][1]["status"] == "awaiting_approval"


async def test_plan_edits_are_checked_by_the_plan_rules(
    client: httpx.AsyncClient, browser: Browser, database: Database
) -> None:
    async with browser() as page:
        _account, csrf = await new_account(client, page)
        workflow_id = await draft_on_page(page, csrf)
        path = f"/dashboard/workflows/{workflow_id}/plan"
        editor = await page.get(path)
        assert editor.status_code == 200
        assert "Add a step" in editor.text
        count = int(re.search(r'name="count" value="(\d+)"', editor.text).group(1))  # type: ignore[union-attr]
        assert count == 3  # the two drafted steps and a blank one

        bad_json = await page.post(
            path,
            data={
                "csrf_token": csrf,
                "count": "1",
                "description-0": "Say hi",
                "tool-0": "llm_response",
                "input-0": "{oops",
            },
        )
        assert bad_json.status_code == 422
        assert "not valid JSON" in bad_json.text
        no_outline = await page.post(
            path,
            data={
                "csrf_token": csrf,
                "count": "1",
                "description-0": "Post it",
                "tool-0": "format_post",
            },
        )
        assert no_outline.status_code == 422
        assert "no generate_outline step before it" in no_outline.text
        assert await state(database, workflow_id) == ("draft", 1, None)

        saved = await page.post(
            path,
            data={
                "csrf_token": csrf,
                "count": "2",
                "description-0": "Summarise the launch",
                "tool-0": "llm_response",
                "input-0": '{"topic": "launch"}',
                "description-1": "An old step",
                "tool-1": "web_search",
                "remove-1": "on",
            },
        )
        assert saved.status_code == 303
        shown = await page.get(f"/dashboard/workflows/{workflow_id}")
        assert "revision 2" in shown.text
        assert "Summarise the launch" in shown.text
        assert "An old step" not in shown.text
    assert await state(database, workflow_id) == ("draft", 2, None)


async def test_plan_steps_are_reordered_by_their_position_numbers(
    client: httpx.AsyncClient, browser: Browser, database: Database
) -> None:
    async with browser() as page:
        account, csrf = await new_account(client, page)
        workflow_id = await draft_on_page(page, csrf)
        path = f"/dashboard/workflows/{workflow_id}/plan"
        editor = await page.get(path)
        assert 'name="position-0" value="1"' in editor.text
        assert 'name="position-1" value="2"' in editor.text
        assert 'name="position-2" value=""' in editor.text  # the blank "add a step"

        def step(i: int, description: str, place: str, position: str) -> dict[str, str]:
            return {
                f"description-{i}": description,
                f"tool-{i}": "llm_response",
                f"place-{i}": place,
                f"position-{i}": position,
            }

        saved = await page.post(
            path,
            data={
                "csrf_token": csrf,
                "count": "4",
                **step(0, "First", "1", "3"),  # moved down: the others close up
                **step(1, "Second", "2", "2"),
                **step(2, "Third", "3", "3"),
                **step(3, "New", "", "1"),  # a new step inserted at the top
            },
        )
        assert saved.status_code == 303, saved.text
    detail = (await client.get(f"/api/workflows/{workflow_id}", headers=account.headers)).json()
    steps = detail["workflowSteps"]
    assert [step["description"] for step in steps] == ["New", "Second", "First", "Third"]
    assert await state(database, workflow_id) == ("draft", 2, None)


async def test_the_schedule_is_changed_from_the_workflow_page(
    client: httpx.AsyncClient, browser: Browser, database: Database
) -> None:
    async with browser() as page:
        _account, csrf = await new_account(client, page)
        workflow_id = await draft_on_page(page, csrf)
        path = f"/dashboard/workflows/{workflow_id}/schedule"
        bad = await page.post(
            path, data={"csrf_token": csrf, "schedule": "0 9 * *", "timezone": "UTC"}
        )
        assert bad.status_code == 422
        assert "Nothing changed" in bad.text
        assert "exactly 5 fields" in bad.text
        assert await state(database, workflow_id) == ("draft", 1, None)
        good = await page.post(
            path, data={"csrf_token": csrf, "schedule": "30 7 * * *", "timezone": "Asia/Tokyo"}
        )
        assert good.status_code == 303
        shown = await page.get(f"/dashboard/workflows/{workflow_id}")
        assert "Schedule saved: At 07:30 (Asia/Tokyo)." in shown.text
        assert "Fire log" in shown.text
    assert await state(database, workflow_id) == ("draft", 1, "30 7 * * *")


async def test_older_runs_are_a_page_away(
    client: httpx.AsyncClient, browser: Browser, database: Database
) -> None:
    async with browser() as page:
        account, csrf = await new_account(client, page)
        workflow_id, run_id = await paused_run_on_pages(client, page, account, csrf)
        base = f"/api/workflows/{workflow_id}"
        stopped = await client.post(f"{base}/runs/{run_id}/stop", headers=account.headers)
        assert stopped.status_code == 200, stopped.text
        for _ in range(RUNS_IN_DETAIL):  # runs 2 … 51, each stopped at once
            started = await client.post(f"{base}/run", headers=account.headers)
            assert started.status_code == 201, started.text
            ended = await client.post(
                f"{base}/runs/{started.json()['runId']}/stop", headers=account.headers
            )
            assert ended.status_code == 200, ended.text

        newest = await page.get(f"/dashboard/workflows/{workflow_id}")
        assert ">Run 51</a>" in newest.text
        assert ">Run 2</a>" in newest.text
        assert ">Run 1</a>" not in newest.text
        assert f'href="/dashboard/workflows/{workflow_id}?runs_before=2">Older runs</a>' in (
            newest.text
        )
        older = await page.get(f"/dashboard/workflows/{workflow_id}?runs_before=2")
        assert older.status_code == 200
        assert ">Run 1</a>" in older.text
        assert ">Run 2</a>" not in older.text
        assert "Older runs" not in older.text
        assert ">Newest runs</a>" in older.text
        # No run is active, so the page still offers to start one.
        assert ">Run now</button>" in older.text
        bad = await page.get(f"/dashboard/workflows/{workflow_id}?runs_before=zero")
        assert bad.status_code == 404


async def test_the_list_pages_by_50_with_next_and_previous_links(
    client: httpx.AsyncClient, browser: Browser, database: Database
) -> None:
    async with browser() as page:
        account, _csrf = await new_account(client, page)
        async with database.write() as session:
            session.add_all(
                Workflow(
                    team_id=account.team_id,
                    title=f"Workflow {number:02}",
                    goal="A goal",
                    created_at=datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=number),
                )
                for number in range(51)
            )
        first = await page.get("/dashboard")
        titles = re.findall(r">(Workflow \d\d)</a>", first.text)
        assert len(titles) == 50
        assert titles[0] == "Workflow 50"  # newest first
        assert 'rel="prev"' not in first.text
        older = re.search(r'href="(/dashboard\?after=[^"]+)" rel="next"', first.text)
        assert older
        second = await page.get(older[1])
        assert re.findall(r">(Workflow \d\d)</a>", second.text) == ["Workflow 00"]
        assert 'rel="next"' not in second.text
        newer = re.search(r'href="(/dashboard\?before=[^"]+)" rel="prev"', second.text)
        assert newer
        back = await page.get(newer[1])
        assert re.findall(r">(Workflow \d\d)</a>", back.text) == titles
        assert 'rel="prev"' not in back.text


async def test_the_approve_button_approves_the_plan_it_showed(
    client: httpx.AsyncClient, browser: Browser, database: Database
) -> None:
    async with browser() as page:
        owner, csrf = await new_account(client, page)
        draft_id = await draft_on_page(page, csrf)
        shown = await page.get(f"/dashboard/workflows/{draft_id}")
        assert '<input type="hidden" name="revision" value="1">' in shown.text
        # Another admin edits the plan before this one presses Approve.
        edited = await client.post(
            f"/api/workflows/{draft_id}/steps",
            json={"steps": [{"description": "Say hello", "toolName": "llm_response"}]},
            headers=owner.headers,
        )
        assert edited.status_code == 200
        stale = await page.post(
            f"/dashboard/workflows/{draft_id}/activate",
            data={"csrf_token": csrf, "revision": "1"},
        )
        assert stale.status_code == 409
        assert (await stored(database, Workflow, draft_id)).status.value == "draft"
        inbox = await page.get("/dashboard/inbox")
        assert '<input type="hidden" name="revision" value="2">' in inbox.text
