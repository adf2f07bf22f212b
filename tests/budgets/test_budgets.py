"""Per-team budgets: plan drafts and manual run starts per hour, LLM tokens per day; 429
``budget_exceeded`` with ``Retry-After``, and a run that reaches the token budget fails at the
step it reached, its completed steps kept."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest

from signoff.budgets.service import BudgetExceeded
from signoff.config import Settings
from signoff.db import Database
from signoff.kit.clock import FrozenClock
from signoff.models import Run, RunStatus, RunTrigger, StepStatus
from signoff.runs import repository as run_repository
from signoff.runs import service as run_service
from signoff.runs.executor import StepExecutor
from signoff.workflows import repository as workflow_repository
from tests.support.accounts import HTML, as_browser, signup
from tests.support.engine import RecordingQueue, ScriptedModel, active_workflow_run
from tests.support.workflows import GOAL, create_workflow, start_run, wait_for_run

pytestmark = pytest.mark.postgres

# The test clock starts at 09:00 UTC: the token budget frees at midnight, 15 hours on.
UNTIL_MIDNIGHT = 15 * 3600


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"team_plans_per_hour": 2, "team_runs_per_hour": 1}


def assert_budget_refusal(response: httpx.Response, retry_after: int, setting: str) -> None:
    assert response.status_code == 429, response.text
    assert response.headers["retry-after"] == str(retry_after)
    body = response.json()
    assert body["code"] == "budget_exceeded"
    assert setting in body["error"]


async def test_plan_drafts_per_hour(client: httpx.AsyncClient, clock: FrozenClock) -> None:
    owner = await signup(client)
    for _ in range(2):
        await create_workflow(client, owner)
    clock.advance(timedelta(minutes=20))
    refused = await client.post("/api/workflows", json={"goal": GOAL}, headers=owner.headers)
    assert_budget_refusal(refused, 40 * 60, "SIGNOFF_TEAM_PLANS_PER_HOUR=2")
    assert "try again in 40 minutes" in refused.json()["error"]
    listed = await client.get("/api/workflows", headers=owner.headers)
    assert len(listed.json()) == 2  # nothing was drafted or saved
    # Another team has its own budget.
    await create_workflow(client, await signup(client))
    clock.advance(timedelta(minutes=40))
    await create_workflow(client, owner)  # the first draft left the hour


async def test_manual_run_starts_per_hour(client: httpx.AsyncClient, clock: FrozenClock) -> None:
    owner = await signup(client)
    workflow_id, first = await start_run(client, owner)  # the approval's run: not counted
    await wait_for_run(client, owner, workflow_id, first, "awaiting_approval")
    runs = f"/api/workflows/{workflow_id}"
    await client.post(f"{runs}/runs/{first}/stop", headers=owner.headers)
    started = await client.post(f"{runs}/run", headers=owner.headers)
    assert started.status_code == 201, started.text
    await client.post(f"{runs}/runs/{started.json()['runId']}/stop", headers=owner.headers)
    clock.advance(timedelta(seconds=90))
    refused = await client.post(f"{runs}/run", headers=owner.headers)
    assert_budget_refusal(refused, 3600 - 90, "SIGNOFF_TEAM_RUNS_PER_HOUR=1")
    # The dashboard's button answers the same, as a page.
    as_browser(client, owner)
    page = await client.get(f"/dashboard/workflows/{workflow_id}", headers=HTML)
    csrf = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    button = await client.post(
        f"/dashboard/workflows/{workflow_id}/run", data={"csrf_token": csrf}, headers=HTML
    )
    client.cookies.clear()
    assert button.status_code == 429
    assert "SIGNOFF_TEAM_RUNS_PER_HOUR" in button.text
    clock.advance(timedelta(seconds=3600 - 90))
    again = await client.post(f"{runs}/run", headers=owner.headers)
    assert again.status_code == 201, again.text


async def test_a_run_that_reaches_the_token_budget_fails_at_that_step(
    database: Database, settings: Settings, clock: FrozenClock
) -> None:
    tight = settings.model_copy(update={"team_tokens_per_day": 1, "team_runs_per_hour": 0})
    script = ScriptedModel()
    engine = StepExecutor(db=database, settings=tight, model=script.model(), queue=RecordingQueue())
    workflow_id, run_id, job = await active_workflow_run(
        database, tight, tools=("web_search", "generate_outline", "format_post")
    )
    await engine.execute(job)  # step 1 runs (nothing spent yet today); step 2 finds none left
    assert len(script.calls) == 1
    async with database.read() as session:
        run = await session.get(Run, run_id)
        assert run is not None
        steps = await run_repository.list_steps(session, run_id)
    assert run.status == RunStatus.FAILED
    assert run.failed_step_index == 1
    assert run.failure_reason is not None
    assert "token budget for today is used up" in run.failure_reason
    assert "SIGNOFF_TEAM_TOKENS_PER_DAY" in run.failure_reason
    assert [step.status for step in steps] == [
        StepStatus.COMPLETED,
        StepStatus.FAILED,
        StepStatus.SKIPPED,
    ]
    assert steps[0].output  # the completed step is kept, not redone
    assert steps[1].input_tokens == 0  # nothing was sent to the model
    # Starting another run by hand is refused until midnight UTC; its job does nothing now.
    await engine.execute(job)
    assert len(script.calls) == 1
    async with database.write() as session:
        workflow = await workflow_repository.get_with_steps(session, workflow_id)
        assert workflow is not None
        with pytest.raises(BudgetExceeded) as refused:
            await run_service.start_run(
                session, tight, workflow, trigger=RunTrigger.MANUAL, started_by=None
            )
    assert refused.value.headers == {"Retry-After": str(UNTIL_MIDNIGHT)}
    # A scheduled fire is not refused: its run starts and fails at its first step, saying why.
    async with database.write() as session:
        workflow = await workflow_repository.get_with_steps(session, workflow_id)
        assert workflow is not None
        fired, fired_job = await run_service.start_run(
            session, tight, workflow, trigger=RunTrigger.SCHEDULE, started_by=None
        )
    await engine.execute(fired_job)
    assert len(script.calls) == 1
    async with database.read() as session:
        fired_run = await session.get(Run, fired.id)
    assert fired_run is not None
    assert fired_run.status == RunStatus.FAILED
    assert fired_run.failed_step_index == 0
    # The next UTC day has a fresh budget.
    clock.advance(timedelta(seconds=UNTIL_MIDNIGHT))
    async with database.write() as session:
        workflow = await workflow_repository.get_with_steps(session, workflow_id)
        assert workflow is not None
        await run_service.start_run(
            session, tight, workflow, trigger=RunTrigger.MANUAL, started_by=None
        )


async def test_plan_drafts_spend_tokens_and_are_refused_once_the_day_is_spent(
    client: httpx.AsyncClient, settings: Settings, clock: FrozenClock
) -> None:
    owner = await signup(client)
    draft = await create_workflow(client, owner)
    # The app reads this settings object: the budget shrinks below what the draft used.
    settings.team_tokens_per_day = 1
    refused = await client.post("/api/workflows", json={"goal": GOAL}, headers=owner.headers)
    assert_budget_refusal(refused, UNTIL_MIDNIGHT, "SIGNOFF_TEAM_TOKENS_PER_DAY")
    # Approving the plan is not refused (a decision), but its run stops before its first step.
    activated = await client.post(
        f"/api/workflows/{draft['workflowId']}/activate", headers=owner.headers
    )
    assert activated.status_code == 200, activated.text
    run_id = activated.json()["workflowRuns"][0]["id"]
    run = await wait_for_run(client, owner, draft["workflowId"], run_id, "failed")
    assert "token budget for today is used up" in run["failureReason"]
    assert run["inputTokens"] == 0
