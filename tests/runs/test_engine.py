"""The run engine's invariants, each with a test that fails if it breaks: a job names its work
exactly, one writer per step, nothing is lost between commit and enqueue, the conversation is
the run's only state, emails are written with the change that causes them."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from pydantic_ai import ModelMessagesTypeAdapter
from pydantic_ai.exceptions import ModelHTTPError
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError

from signoff.auth import service as auth_service
from signoff.config import Settings
from signoff.db import Database
from signoff.kit.clock import FrozenClock, utc_now
from signoff.models import (
    Asset,
    OutboxMail,
    Role,
    Run,
    RunStatus,
    RunStep,
    StepStatus,
)
from signoff.queue.jobs import StepJob
from signoff.runs import conversation, service
from signoff.runs.executor import StepExecutor
from signoff.runs.states import RUN_TRANSITIONS, IllegalTransition, transition_run
from tests.support.db import count
from tests.support.engine import (
    PERSON,
    RecordingQueue,
    ScriptedModel,
    active_workflow_run,
    new_owner,
)

pytestmark = pytest.mark.postgres


def engine_for(
    database: Database, settings: Settings, script: ScriptedModel
) -> tuple[StepExecutor, RecordingQueue]:
    queue = RecordingQueue()
    return StepExecutor(db=database, settings=settings, model=script.model(), queue=queue), queue


async def load(database: Database, run_id: int) -> tuple[Run, list[RunStep]]:
    async with database.read() as session:
        run = await session.get(Run, run_id)
        steps = list(
            await session.scalars(
                select(RunStep).where(RunStep.run_id == run_id).order_by(RunStep.step_index)
            )
        )
    assert run is not None
    return run, steps


async def test_run_to_approval_one_request_per_step(
    database: Database, settings: Settings, clock: FrozenClock
) -> None:
    script = ScriptedModel()
    engine, queue = engine_for(database, settings, script)
    _, run_id, job = await active_workflow_run(database, settings)
    await engine.execute(job)  # steps 2 and 3 are chained by the same worker
    run, steps = await load(database, run_id)
    assert run.status == RunStatus.AWAITING_APPROVAL
    assert [step.status for step in steps] == [
        StepStatus.COMPLETED,
        StepStatus.COMPLETED,
        StepStatus.AWAITING_APPROVAL,
    ]
    # One model request per step: no summary request after the tool.
    assert script.tools_called() == ["web_search", "generate_outline", "format_post"]
    assert run.model_requests == 3
    assert run.input_tokens > 0
    assert run.output_tokens > 0
    # Chained steps need no job, and waiting costs nothing: no job is queued for a paused run.
    assert queue.jobs == []
    assert await count(database, OutboxMail, OutboxMail.kind == "step_approval") == 1


async def test_a_job_that_names_other_work_does_nothing(
    database: Database, settings: Settings
) -> None:
    script = ScriptedModel()
    engine, _queue = engine_for(database, settings, script)
    _, run_id, job = await active_workflow_run(database, settings)
    await engine.execute(StepJob(run_id, 1, 1))  # not the current step
    await engine.execute(StepJob(run_id, 0, 2))  # not the current attempt
    await engine.execute(StepJob(run_id + 99, 0, 1))  # no such run
    assert script.calls == []
    await engine.execute(job)  # runs the first step and chains the next ones to the pause
    _, steps = await load(database, run_id)
    assert steps[2].status == StepStatus.AWAITING_APPROVAL
    async with database.read() as session:
        run = await session.get(Run, run_id)
        assert run is not None
        stored = len(await conversation.load(session, run.conversation_id))
    await engine.execute(job)  # delivered twice: the second finds the run moved on
    await engine.execute(StepJob(run_id, 1, 1))  # a chained step's job (e.g. a sweep's): nothing
    assert script.tools_called() == ["web_search", "generate_outline", "format_post"]
    _, again = await load(database, run_id)
    assert [step.status for step in again] == [step.status for step in steps]
    async with database.read() as session:
        messages = await conversation.load(session, run.conversation_id)
    assert len(messages) == stored  # each step's messages once


async def test_a_taken_over_workers_late_result_is_refused(
    database: Database, settings: Settings, clock: FrozenClock
) -> None:
    script = ScriptedModel()
    engine, _queue = engine_for(database, settings, script)
    _, run_id, job = await active_workflow_run(database, settings, tools=("web_search",))
    script.gate = gate = asyncio.Event()
    slow = asyncio.create_task(engine.execute(job))
    await script.entered.wait()
    # The first worker looks dead: its lease runs out and another takes the step over.
    clock.advance(timedelta(seconds=settings.step_lease_seconds + 1))
    await engine.execute(job)
    gate.set()
    await slow
    _, steps = await load(database, run_id)
    assert steps[0].status == StepStatus.COMPLETED
    assert steps[0].takeovers == 1
    assert steps[0].attempt == 1
    assert script.tools_called() == ["web_search", "web_search"]
    async with database.read() as session:
        run = await session.get(Run, run_id)
        assert run is not None
        messages = await conversation.load(session, run.conversation_id)
    assert len(messages) == 3  # only the lease holder wrote


async def test_a_late_result_is_refused_while_the_new_lease_holder_runs_the_step(
    database: Database, settings: Settings, clock: FrozenClock
) -> None:
    # The step is still running, under another worker's lease: only the token tells them apart.
    script = ScriptedModel()
    engine, _queue = engine_for(database, settings, script)
    _, run_id, job = await active_workflow_run(
        database, settings, tools=("web_search", "generate_outline")
    )
    script.gate = first = asyncio.Event()
    slow = asyncio.create_task(engine.execute(job))
    await asyncio.wait_for(script.held.wait(), timeout=5)
    clock.advance(timedelta(seconds=settings.step_lease_seconds + 1))
    script.held.clear()
    script.gate = second = asyncio.Event()
    takeover = asyncio.create_task(engine.execute(job))
    await asyncio.wait_for(script.held.wait(), timeout=5)
    first.set()
    await slow
    run, steps = await load(database, run_id)
    assert run.status == RunStatus.RUNNING
    assert steps[0].status == StepStatus.RUNNING  # not completed by the late result
    assert steps[0].takeovers == 1
    assert await _stored_tool_calls(database, run_id) == []
    second.set()
    await takeover
    run, steps = await load(database, run_id)
    assert run.status == RunStatus.COMPLETED
    assert await _stored_tool_calls(database, run_id) == ["web_search", "generate_outline"]


async def test_a_stopped_runs_late_result_is_dropped(
    database: Database, settings: Settings
) -> None:
    script = ScriptedModel()
    engine, queue = engine_for(database, settings, script)
    _, run_id, job = await active_workflow_run(database, settings)
    script.gate = gate = asyncio.Event()
    in_flight = asyncio.create_task(engine.execute(job))
    await script.entered.wait()
    async with database.write() as session:
        await service.stop_run(session, run_id, PERSON)
    gate.set()
    await in_flight
    run, steps = await load(database, run_id)
    assert run.status == RunStatus.FAILED
    assert run.failure_reason == "Stopped by user"
    assert [step.status for step in steps] == [StepStatus.SKIPPED] * 3
    assert steps[0].output is None
    assert queue.jobs == []  # nothing after it runs
    assert await count(database, Asset) == 0


async def test_losing_the_lease_cancels_the_model_call(
    database: Database, settings: Settings
) -> None:
    settings.step_lease_seconds = 0.15  # renewed every 50 ms
    script = ScriptedModel()
    engine, _ = engine_for(database, settings, script)
    _, run_id, job = await active_workflow_run(database, settings)
    script.gate = asyncio.Event()  # never opened: only a cancellation ends the call
    in_flight = asyncio.create_task(engine.execute(job))
    await script.entered.wait()
    async with database.write() as session:
        await service.stop_run(session, run_id, PERSON)
    await asyncio.wait_for(in_flight, timeout=5)


async def test_cancelling_the_job_cancels_the_model_call(
    database: Database, settings: Settings
) -> None:
    script = ScriptedModel()
    engine, _ = engine_for(database, settings, script)
    _, _run_id, job = await active_workflow_run(database, settings)
    script.gate = asyncio.Event()  # never opened: only a cancellation ends the call
    in_flight = asyncio.create_task(engine.execute(job))
    await script.entered.wait()
    in_flight.cancel()  # a shutdown, or procrastinate aborting the job
    with pytest.raises(asyncio.CancelledError):
        await in_flight
    # The model call is not left running on its own, spending tokens for nobody.
    await asyncio.wait_for(script.cancelled.wait(), timeout=5)


async def test_an_error_while_recording_fails_the_attempt_and_frees_the_step(
    database: Database, settings: Settings, clock: FrozenClock
) -> None:
    script = ScriptedModel()
    engine, queue = engine_for(database, settings, script)
    _, run_id, job = await active_workflow_run(database, settings)
    script.gate = gate = asyncio.Event()
    in_flight = asyncio.create_task(engine.execute(job))
    await script.entered.wait()
    # While the model works, a message takes the position the step's first message needs:
    # recording the step's result then fails on the (conversation, position) unique index.
    async with database.write() as session:
        run = await session.get(Run, run_id)
        assert run is not None
        await conversation.append_user_text(session, run.conversation_id, "in the way")
    gate.set()
    await in_flight  # the worker is alive: no exception escapes to the queue
    _, steps = await load(database, run_id)
    # Not left running under its lease like a crashed worker's step (which a takeover would
    # re-run after the lease): the attempt failed with its real reason, and a retry is queued.
    assert steps[0].status == StepStatus.PENDING
    assert steps[0].claim_token is None
    assert steps[0].takeovers == 0
    assert steps[0].retries == 1
    assert "Recording the result failed: IntegrityError" in (steps[0].error or "")
    assert queue.jobs[-1][0] == job
    clock.advance(timedelta(seconds=settings.step_retry_base_seconds))
    await engine.execute(job)
    _, steps = await load(database, run_id)
    assert steps[0].status == StepStatus.COMPLETED
    assert steps[0].error is None


async def test_sweep_finds_work_that_was_never_queued_and_expired_leases(
    database: Database, settings: Settings, clock: FrozenClock
) -> None:
    script = ScriptedModel()
    engine, queue = engine_for(database, settings, script)
    _, run_id, job = await active_workflow_run(database, settings)  # committed, never enqueued
    assert await engine.sweep() == 1
    assert queue.jobs == [(job, None)]
    # A worker that dies mid-step leaves a running step behind: found once its lease ran out.
    script.gate = asyncio.Event()
    crashed = asyncio.create_task(engine.execute(job))
    await script.entered.wait()
    crashed.cancel()
    queue.jobs.clear()
    assert await engine.sweep() == 0
    clock.advance(timedelta(seconds=settings.step_lease_seconds + 1))
    assert await engine.sweep() == 1
    await engine.execute(queue.last())
    _, steps = await load(database, run_id)
    assert steps[0].status == StepStatus.COMPLETED
    assert steps[0].takeovers == 1


async def test_a_step_whose_worker_keeps_crashing_fails(
    database: Database, settings: Settings, clock: FrozenClock
) -> None:
    settings.step_max_takeovers = 1
    script = ScriptedModel()
    engine, _ = engine_for(database, settings, script)
    _, run_id, job = await active_workflow_run(database, settings)
    for _ in range(2):
        script.gate = asyncio.Event()
        script.entered.clear()
        crashed = asyncio.create_task(engine.execute(job))
        await script.entered.wait()
        crashed.cancel()
        clock.advance(timedelta(seconds=settings.step_lease_seconds + 1))
    await engine.execute(job)
    run, steps = await load(database, run_id)
    assert run.status == RunStatus.FAILED
    assert "crashed" in (run.failure_reason or "")
    assert steps[0].status == StepStatus.FAILED
    assert await count(database, OutboxMail, OutboxMail.kind == "run_failed") == 1


async def test_transient_errors_are_retried_with_backoff_then_fail(
    database: Database, settings: Settings, clock: FrozenClock
) -> None:
    settings.step_max_retries = 2
    script = ScriptedModel()
    script.errors = [ModelHTTPError(503, "m"), ModelHTTPError(429, "m"), ModelHTTPError(500, "m")]
    engine, queue = engine_for(database, settings, script)
    _, run_id, job = await active_workflow_run(database, settings)
    await engine.execute(job)
    retry, not_before = queue.jobs[-1]
    assert retry == job
    assert not_before is not None
    assert not_before > clock()
    await engine.execute(job)  # before the backoff passed: nothing
    assert len(script.calls) == 1
    clock.advance(timedelta(seconds=settings.step_retry_base_seconds))
    await engine.execute(job)
    clock.advance(timedelta(seconds=settings.step_retry_base_seconds * 2))
    await engine.execute(job)
    run, steps = await load(database, run_id)
    assert len(script.calls) == 3
    assert run.status == RunStatus.FAILED
    assert run.failure_reason is not None
    assert "HTTP 500" in run.failure_reason
    assert run.failed_step_index == 0
    assert steps[0].status == StepStatus.FAILED
    async with database.read() as session:
        mail = await session.scalar(select(OutboxMail).where(OutboxMail.kind == "run_failed"))
    assert mail is not None
    assert "step 1" in mail.text_body.lower()
    assert "HTTP 500" in mail.text_body


async def test_a_non_transient_error_fails_at_once(database: Database, settings: Settings) -> None:
    script = ScriptedModel()
    script.errors = [ModelHTTPError(401, "m")]
    engine, _ = engine_for(database, settings, script)
    _, run_id, job = await active_workflow_run(database, settings)
    await engine.execute(job)
    run, _ = await load(database, run_id)
    assert run.status == RunStatus.FAILED
    assert len(script.calls) == 1


async def test_a_failed_tool_is_never_sent_for_approval(
    database: Database, settings: Settings, clock: FrozenClock
) -> None:
    settings.step_max_retries = 1
    settings.llm_model = "scripted"  # not offline: no placeholder images
    settings.image_base_url = "http://127.0.0.1:9"  # nothing listens there
    script = ScriptedModel()
    engine, _ = engine_for(database, settings, script)
    _, run_id, job = await active_workflow_run(database, settings, tools=("generate_image",))
    await engine.execute(job)
    clock.advance(timedelta(minutes=5))
    await engine.execute(job)
    run, _steps = await load(database, run_id)
    assert run.status == RunStatus.FAILED
    assert "Image generation failed" in (run.failure_reason or "")
    assert await count(database, Asset) == 0
    assert await count(database, OutboxMail, OutboxMail.kind == "step_approval") == 0


async def test_approve_keeps_the_output_without_a_model_call(
    database: Database, settings: Settings
) -> None:
    script = ScriptedModel()
    engine, _queue = engine_for(database, settings, script)
    _, run_id, job = await active_workflow_run(database, settings, tools=("format_post",))
    await engine.execute(job)
    _, [step] = await load(database, run_id)
    pending_output = step.output
    async with database.write() as session:
        decision = await service.decide(
            session,
            settings,
            run_id=run_id,
            step_index=0,
            attempt=1,
            action="approve",
            note=None,
            actor=PERSON,
        )
    assert decision.job is None
    run, [step] = await load(database, run_id)
    assert run.status == RunStatus.COMPLETED
    assert len(script.calls) == 1
    async with database.read() as session:
        asset = await session.scalar(select(Asset))
    assert asset is not None
    assert asset.status.value == "final"
    assert asset.content == pending_output == step.output


async def test_reject_reruns_the_step_with_the_feedback(
    database: Database, settings: Settings, clock: FrozenClock
) -> None:
    script = ScriptedModel()
    engine, _queue = engine_for(database, settings, script)
    _, run_id, job = await active_workflow_run(database, settings, tools=("format_post",))
    await engine.execute(job)
    clock.advance(timedelta(hours=3))  # the post waits for its review
    async with database.write() as session:
        decision = await service.decide(
            session,
            settings,
            run_id=run_id,
            step_index=0,
            attempt=1,
            action="reject",
            note="Mention the webinar",
            actor=PERSON,
        )
    assert decision.job == StepJob(run_id, 0, 2)
    await engine.execute(StepJob(run_id, 0, 1))  # the old attempt's job: nothing
    assert len(script.calls) == 1
    await engine.execute(decision.job)
    _, [step] = await load(database, run_id)
    assert step.attempt == 2
    assert step.status == StepStatus.AWAITING_APPROVAL
    assert step.started_at == clock()  # attempt 2's start, not the first attempt's
    assert "webinar" in (step.output or "").lower()
    # The model saw the feedback as the conversation's last message.
    last_messages = script.calls[-1][1]
    assert "Rejected. Feedback: Mention the webinar. Please revise." in str(last_messages[-1])


async def test_the_conversation_is_the_state_and_reloads_exactly(
    database: Database, settings: Settings
) -> None:
    script = ScriptedModel()
    engine, queue = engine_for(database, settings, script)
    _, run_id, job = await active_workflow_run(
        database, settings, tools=("web_search", "generate_outline", "generate_report")
    )
    await engine.execute(job)
    # Steps 2 and 3 were chained (the worker went on with the conversation it held, and no
    # job was queued); each saw every earlier message exactly as a reload gives it.
    assert queue.jobs == []
    assert script.tools_called() == ["web_search", "generate_outline", "generate_report"]
    async with database.read() as session:
        run = await session.get(Run, run_id)
        assert run is not None
        assert run.status == RunStatus.COMPLETED
        stored = await conversation.load(session, run.conversation_id)
    stored_parts = [part for message in stored for part in message.parts]
    for number in (2, 3):
        # The library merges a step's message into the request with the last tool result
        # before sending, so compare part by part: what the step saw is exactly the stored
        # conversation up to and including its own message.
        seen = [part for message in script.calls[number - 1][1] for part in message.parts]
        assert seen == stored_parts[: len(seen)]
        assert f"Step {number} of 3" in str(seen[-1])
    assert len(script.calls[2][1]) > len(script.calls[1][1])
    again = ModelMessagesTypeAdapter.validate_json(ModelMessagesTypeAdapter.dump_json(stored))
    assert again == stored


async def test_the_last_step_completes_the_run_and_emails_each_owner_it_should(
    database: Database, settings: Settings
) -> None:
    # The last step's record is the direct transaction: the run completes in it, with its email
    # to every owner who receives team mail; in production only verified addresses do.
    script = ScriptedModel()
    production = settings.model_copy(update={"env": "production"})
    engine = StepExecutor(
        db=database, settings=production, model=script.model(), queue=RecordingQueue()
    )
    workflow_id, run_id, job = await active_workflow_run(
        database, settings, tools=("web_search", "generate_report")
    )
    async with database.write() as session:
        run = await session.get(Run, run_id)
        assert run is not None
        verified = await auth_service.signup(
            session,
            settings,
            email="verified@example.com",
            password_hash="not-a-real-hash",
            name="Vera",
        )
        unverified = await auth_service.signup(
            session,
            settings,
            email="unverified@example.com",
            password_hash="not-a-real-hash",
            name="Una",
        )
        for user, _team in (verified, unverified):
            await auth_service.add_member(
                session, team_id=run.team_id, user_id=user.id, role=Role.OWNER
            )
        verified[0].email_verified_at = utc_now()
    await engine.execute(job)
    run, steps = await load(database, run_id)
    assert run.status == RunStatus.COMPLETED
    assert run.finished_at is not None
    assert run.model_requests == 2
    assert run.input_tokens == sum(step.input_tokens for step in steps) > 0
    assert [step.status for step in steps] == [StepStatus.COMPLETED, StepStatus.COMPLETED]
    async with database.read() as session:
        mails = list(
            await session.scalars(
                select(OutboxMail).where(OutboxMail.kind == "run_completed").order_by(OutboxMail.id)
            )
        )
    # The workflow's first owner (from active_workflow_run) and Una never verified.
    assert [mail.to_address for mail in mails] == ["verified@example.com"]
    assert mails[0].subject == "Run 1 completed: AI news post"
    assert f"/dashboard/workflows/{workflow_id}/runs/{run_id}" in mails[0].text_body
    assert "all 2 steps" in mails[0].text_body


async def _stored_tool_calls(database: Database, run_id: int) -> list[str]:
    async with database.read() as session:
        run = await session.get(Run, run_id)
        assert run is not None
        rows = await conversation.load_rows(session, run.conversation_id)
    return [m.tool_name or "" for m in conversation.public_messages(rows) if m.kind == "tool_call"]


async def test_a_crash_in_a_chained_step_is_swept_and_taken_over_once(
    database: Database, settings: Settings, clock: FrozenClock
) -> None:
    script = ScriptedModel()
    engine, queue = engine_for(database, settings, script)
    _, run_id, job = await active_workflow_run(database, settings)
    script.gate = asyncio.Event()  # holds the second call: step 2, chained by this worker
    script.gate_after = 1
    crashed = asyncio.create_task(engine.execute(job))
    await asyncio.wait_for(script.held.wait(), timeout=5)
    crashed.cancel()  # the worker dies in the middle of the chained step
    with pytest.raises(asyncio.CancelledError):
        await crashed
    _, steps = await load(database, run_id)
    assert [step.status for step in steps[:2]] == [StepStatus.COMPLETED, StepStatus.RUNNING]
    assert steps[1].claim_token is not None  # a lease like any claim
    assert queue.jobs == []
    assert await engine.sweep() == 0  # the lease still holds
    clock.advance(timedelta(seconds=settings.step_lease_seconds + 1))
    assert await engine.sweep() == 1
    assert queue.last() == StepJob(run_id, 1, 1)
    await engine.execute(queue.last())  # the takeover, which chains on to the approval
    run, steps = await load(database, run_id)
    assert run.status == RunStatus.AWAITING_APPROVAL
    assert steps[1].status == StepStatus.COMPLETED
    assert steps[1].takeovers == 1
    assert steps[0].takeovers == 0
    assert script.tools_called() == [
        "web_search",
        "generate_outline",  # the crashed call
        "generate_outline",
        "format_post",
    ]
    # Earlier steps are not re-run, and the step completed once.
    assert await _stored_tool_calls(database, run_id) == [
        "web_search",
        "generate_outline",
        "format_post",
    ]


async def test_a_stop_during_a_chained_step_runs_nothing_after_it(
    database: Database, settings: Settings
) -> None:
    script = ScriptedModel()
    engine, queue = engine_for(database, settings, script)
    _, run_id, job = await active_workflow_run(database, settings)
    script.gate = gate = asyncio.Event()
    script.gate_after = 1
    in_flight = asyncio.create_task(engine.execute(job))
    await asyncio.wait_for(script.held.wait(), timeout=5)
    async with database.write() as session:
        await service.stop_run(session, run_id, PERSON)
    gate.set()
    await in_flight
    run, steps = await load(database, run_id)
    assert run.status == RunStatus.FAILED
    assert run.failure_reason == "Stopped by user"
    assert [step.status for step in steps] == [
        StepStatus.COMPLETED,
        StepStatus.SKIPPED,
        StepStatus.SKIPPED,
    ]
    assert steps[1].output is None  # the late result was dropped
    assert script.tools_called() == ["web_search", "generate_outline"]
    assert queue.jobs == []
    assert await _stored_tool_calls(database, run_id) == ["web_search"]
    assert await engine.sweep() == 0


async def test_a_retryable_error_in_a_chained_step_goes_back_through_the_queue(
    database: Database, settings: Settings, clock: FrozenClock
) -> None:
    script = ScriptedModel()
    script.errors_at = {2: ModelHTTPError(503, "m")}  # step 2, chained after step 1
    engine, queue = engine_for(database, settings, script)
    _, run_id, job = await active_workflow_run(database, settings)
    await engine.execute(job)
    _, steps = await load(database, run_id)
    assert steps[1].status == StepStatus.PENDING
    assert steps[1].retries == 1
    assert steps[1].claim_token is None
    [(retry, not_before)] = queue.jobs
    assert retry == StepJob(run_id, 1, 1)
    assert not_before is not None
    assert not_before == clock() + timedelta(seconds=settings.step_retry_base_seconds)
    await engine.execute(retry)  # before the backoff passed: nothing
    assert len(script.calls) == 2
    clock.advance(timedelta(seconds=settings.step_retry_base_seconds))
    await engine.execute(retry)  # the retry, which chains on to the approval
    run, steps = await load(database, run_id)
    assert run.status == RunStatus.AWAITING_APPROVAL
    assert steps[1].status == StepStatus.COMPLETED
    assert steps[1].error is None
    assert script.tools_called() == [
        "web_search",
        "generate_outline",
        "generate_outline",
        "format_post",
    ]
    assert len(queue.jobs) == 1


async def _insert_second_active_run(database: Database, run_id: int) -> None:
    async with database.write() as session:
        await session.execute(
            text(
                "INSERT INTO runs (workflow_id, team_id, run_number, status, trigger, "
                "conversation_id, plan_revision, step_count, current_step_index, started_at, "
                "updated_at, input_tokens, output_tokens, model_requests) "
                "SELECT workflow_id, team_id, 99, 'approved', 'manual', conversation_id, 1, 1, "
                "0, started_at, updated_at, 0, 0, 0 FROM runs WHERE id = :id"
            ),
            {"id": run_id},
        )


async def test_one_active_run_per_workflow_is_a_database_constraint(
    database: Database, settings: Settings
) -> None:
    _, run_id, _ = await active_workflow_run(database, settings)
    with pytest.raises(IntegrityError):
        await _insert_second_active_run(database, run_id)
    async with database.write() as session:
        await service.stop_run(session, run_id, PERSON)
    await _insert_second_active_run(database, run_id)  # no active run left: allowed


def test_transition_table_refuses_everything_else() -> None:
    for source in RunStatus:
        for target in RunStatus:
            run = Run(status=source)
            if target in RUN_TRANSITIONS[source]:
                transition_run(run, target)
                assert run.status == target
            else:
                with pytest.raises(IllegalTransition):
                    transition_run(run, target)
    assert RUN_TRANSITIONS[RunStatus.COMPLETED] == frozenset()
    assert RUN_TRANSITIONS[RunStatus.FAILED] == frozenset()


# No app here: an app on this database would take the run from the commit hook and execute it
# with its own engine, racing this test's executor.
async def test_memory_tool_cannot_change_core(database: Database, settings: Settings) -> None:
    from signoff.memory import repository as memory_repository
    from signoff.memory import service as memory_service
    from signoff.models import Workflow, WorkflowStatus, WorkflowStep

    script = ScriptedModel()
    engine, _ = engine_for(database, settings, script)
    async with database.write() as session:
        _, team = await new_owner(session, settings)
        await memory_service.put(session, team.id, "core", "Calm voice.", PERSON)
        workflow = Workflow(
            team_id=team.id,
            title="Remember",
            goal="Remember our brand voice",
            status=WorkflowStatus.ACTIVE,
        )
        workflow.steps = [
            WorkflowStep(
                step_index=0,
                description="Save the voice",
                tool_name="memory",
                tool_input={"action": "update", "key": "core", "value": "SHOUT EVERYTHING"},
            ),
            WorkflowStep(
                step_index=1,
                description="Save a note",
                tool_name="memory",
                tool_input={"action": "create", "key": "voice-notes", "value": "Be kind."},
            ),
        ]
        session.add(workflow)
        await session.flush()
        run, job = await service.start_run(
            session, settings, workflow, trigger=service.RunTrigger.MANUAL, started_by=None
        )
    await engine.execute(job)
    await engine.execute(StepJob(run.id, 1, 1))
    async with database.read() as session:
        core = await memory_repository.get(session, team.id, "core")
        note = await memory_repository.get(session, team.id, "voice-notes")
    assert core is not None
    assert core.value == "Calm voice."
    assert note is not None
    assert note.value == "Be kind."
    _, steps = await load(database, run.id)
    assert "only be changed by a team admin" in (steps[0].output or "")
