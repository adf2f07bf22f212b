"""The hot path's statements on their own: the typed rows match the statements' columns, a claim
leases a pending step, and a record either applies in full or (a guard missed) not at all —
on SQLite a transaction of Core statements, on PostgreSQL the chain's single statement."""

from __future__ import annotations

from datetime import timedelta
from functools import partial

import pytest
from pydantic_ai.messages import ModelRequest, UserPromptPart
from sqlalchemy import func, select

from signoff.config import Settings
from signoff.db import Database
from signoff.kit.clock import utc_now
from signoff.kit.ids import new_id
from signoff.models import (
    Asset,
    AssetStatus,
    ConversationMessage,
    OutboxMail,
    Run,
    RunStatus,
    RunStep,
    StepStatus,
)
from signoff.queue.jobs import StepJob
from signoff.runs import conversation, emails, step_store
from signoff.runs.step_store import CompletedStep, NewAsset, PendingClaim, PlannedStep
from tests.support.engine import active_workflow_run

pytestmark = pytest.mark.postgres

LEASE = timedelta(minutes=5)


def test_the_typed_rows_name_the_columns_of_their_statements() -> None:
    # The rows are built by position, so their fields must be the statements' columns in order.
    assert step_store.RunOwner._fields == tuple(step_store.RUN_AND_OWNERS.selected_columns.keys())
    assert PlannedStep._fields == tuple(column.name for column in step_store._PLANNED)
    assert len(step_store.Opening._fields) == len(step_store.OPENING.selected_columns)


async def _claimed(database: Database, settings: Settings) -> tuple[int, PendingClaim]:
    _, run_id, job = await active_workflow_run(
        database, settings, tools=("web_search", "generate_outline", "llm_response")
    )
    claim = await step_store.claim_pending(database, job, LEASE)
    assert isinstance(claim, PendingClaim)
    return run_id, claim


def _completed(
    run_id: int, claim: PendingClaim, step_index: int, *, token: str, last: bool = False
) -> CompletedStep:
    message = ModelRequest(parts=[UserPromptPart(content=f"step {step_index}")])
    asset = NewAsset(
        id=new_id(),
        team_id=claim.run.team_id,
        workflow_id=claim.run.workflow_id,
        run_id=run_id,
        step_index=step_index,
        attempt=1,
        type="outline",
        status=AssetStatus.FINAL,
        content="# Outline",
        data={},
        mime_type="text/markdown",
        blob=None,
        created_at=utc_now(),
    )
    return CompletedStep(
        job=StepJob(run_id, step_index, 1),
        claim_token=token,
        last=last,
        output="done",
        output_data={"assetId": asset.id},
        warnings=[{"code": "search_failed", "message": "The web search failed.", "setting": None}],
        input_tokens=3,
        output_tokens=2,
        requests=1,
        conversation_id=claim.run.conversation_id,
        position=step_index,
        rows=conversation.dump([message]),
        asset=asset,
        next_token=new_id(),
        lease=LEASE,
    )


async def _state(database: Database, run_id: int) -> tuple[Run, list[RunStep], int, int]:
    async with database.read() as session:
        run = await session.get(Run, run_id)
        assert run is not None
        steps = list(
            await session.scalars(
                select(RunStep).where(RunStep.run_id == run_id).order_by(RunStep.step_index)
            )
        )
        messages = await session.scalar(
            select(func.count())
            .select_from(ConversationMessage)
            .where(ConversationMessage.conversation_id == run.conversation_id)
        )
        assets = await session.scalar(
            select(func.count()).select_from(Asset).where(Asset.run_id == run_id)
        )
    return run, steps, int(messages or 0), int(assets or 0)


async def test_a_claim_leases_the_pending_step_with_what_it_needs(
    database: Database, settings: Settings
) -> None:
    run_id, claim = await _claimed(database, settings)
    assert claim.step == PlannedStep(
        "Step using web_search", "web_search", {"query": "AI news"}, False, None
    )
    assert claim.run.step_count == 3
    assert claim.opening is not None
    assert claim.opening.title == "AI news post"
    assert claim.history == []
    _, steps, _, _ = await _state(database, run_id)
    assert steps[0].status == StepStatus.RUNNING
    assert steps[0].claim_token == claim.token
    # The step is running now: a second claim hands it to the general path.
    assert await step_store.claim_pending(database, StepJob(run_id, 0, 1), LEASE) == "running"


async def test_a_record_whose_guard_misses_writes_nothing(
    database: Database, settings: Settings
) -> None:
    run_id, claim = await _claimed(database, settings)
    before = await _state(database, run_id)
    stale = _completed(run_id, claim, 0, token="not-the-lease")
    assert await step_store.record_completed(database, stale, lambda owners: []) is None
    run, steps, messages, assets = await _state(database, run_id)
    assert (messages, assets) == before[2:] == (0, 0)
    assert run.current_step_index == 0
    assert run.input_tokens == 0
    assert [step.status for step in steps] == [
        StepStatus.RUNNING,
        StepStatus.PENDING,
        StepStatus.PENDING,
    ]
    assert steps[0].claim_token == claim.token


async def test_a_record_applies_in_full_and_leases_the_next_step(
    database: Database, settings: Settings
) -> None:
    run_id, claim = await _claimed(database, settings)
    completed = _completed(run_id, claim, 0, token=claim.token)
    leased = await step_store.record_completed(database, completed, lambda owners: [])
    assert leased == PlannedStep("Step using generate_outline", "generate_outline", {}, False, None)
    run, steps, messages, assets = await _state(database, run_id)
    assert (messages, assets) == (1, 1)
    assert run.status == RunStatus.RUNNING
    assert run.current_step_index == 1
    assert (run.input_tokens, run.output_tokens, run.model_requests) == (3, 2, 1)
    assert steps[0].status == StepStatus.COMPLETED
    assert steps[0].claim_token is None
    assert steps[0].output_data == completed.output_data
    assert steps[0].warnings == completed.warnings  # the direct record keeps them too
    assert steps[1].status == StepStatus.RUNNING
    assert steps[1].claim_token == completed.next_token
    async with database.read() as session:
        stored = await conversation.load(session, claim.run.conversation_id)
    assert conversation.dump(stored) == completed.rows


async def test_the_last_record_completes_the_run_and_writes_its_email(
    database: Database, settings: Settings
) -> None:
    run_id, claim = await _claimed(database, settings)
    for step_index in (0, 1):
        async with database.read() as session:
            token = await session.scalar(
                select(RunStep.claim_token).where(
                    RunStep.run_id == run_id, RunStep.step_index == step_index
                )
            )
        assert token is not None
        completed = _completed(run_id, claim, step_index, token=token)
        assert isinstance(
            await step_store.record_completed(database, completed, lambda owners: []), PlannedStep
        )
    async with database.read() as session:
        token = await session.scalar(
            select(RunStep.claim_token).where(RunStep.run_id == run_id, RunStep.step_index == 2)
        )
    assert token is not None
    last = _completed(run_id, claim, 2, token=token, last=True)
    compose = partial(emails.run_completed_mails, settings)
    assert await step_store.record_completed(database, last, compose) == "run completed"
    run, steps, messages, assets = await _state(database, run_id)
    assert run.status == RunStatus.COMPLETED
    assert run.finished_at is not None
    assert [step.status for step in steps] == [StepStatus.COMPLETED] * 3
    assert (messages, assets) == (3, 3)
    async with database.read() as session:
        mails = list(
            await session.scalars(select(OutboxMail.kind).where(OutboxMail.kind != "verify_email"))
        )
    assert mails == ["run_completed"]  # to the team's one owner
