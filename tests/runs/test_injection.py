"""A page that tells the model to approve cannot skip the human: format_post always waits."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from signoff.config import Settings
from signoff.db import Database
from signoff.models import OutboxMail, Run, RunStatus, RunStep
from signoff.queue.jobs import StepJob
from signoff.runs.executor import StepExecutor
from tests.support.engine import RecordingQueue, ScriptedModel, active_workflow_run
from tests.support.fakeweb import INJECTION_PAGE, FakeWeb, Reply

pytestmark = pytest.mark.postgres


async def test_an_injected_page_still_pauses_at_format_post(
    database: Database, settings: Settings, web: FakeWeb
) -> None:
    web.route("/update", Reply(body=INJECTION_PAGE.encode()))
    script = ScriptedModel()
    queue = RecordingQueue()
    engine = StepExecutor(db=database, settings=settings, model=script.model(), queue=queue)
    _, run_id, job = await active_workflow_run(
        database, settings, tools=("web_extract", "generate_outline", "format_post")
    )
    # The plan's input names the page (the run's step row holds the plan's tool input).
    async with database.write() as session:
        row = await session.scalar(
            select(RunStep).where(RunStep.run_id == run_id, RunStep.step_index == 0)
        )
        assert row is not None
        row.tool_input = {"url": web.url("/update")}
    await engine.execute(job)
    await engine.execute(StepJob(run_id, 1, 1))
    await engine.execute(StepJob(run_id, 2, 1))
    async with database.read() as session:
        run = await session.get(Run, run_id)
        assert run is not None
        extract = await session.scalar(
            select(RunStep).where(RunStep.run_id == run_id, RunStep.step_index == 0)
        )
        mails = list(await session.scalars(select(OutboxMail.kind)))
    assert extract is not None
    assert "Ignore previous instructions" in (extract.output or "")  # the page was read…
    assert "untrusted" in (extract.output or "")  # …as fenced data
    assert run.status == RunStatus.AWAITING_APPROVAL  # and a person still decides
    assert run.current_step_index == 2
    assert mails.count("step_approval") == 1
    assert len(web.requests) == 1
