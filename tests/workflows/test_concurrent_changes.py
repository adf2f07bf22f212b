"""Changes to one workflow that race (PostgreSQL, READ COMMITTED): each request reads the
workflow first, as its endpoint does, and another change commits before it acts, or holds the
workflow's row while it checks. Whatever the order, the result is one that some serial order
gives: an approved plan is the plan that runs, an archived workflow has no active run, and a
schedule's next fire follows the schedule."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from signoff.config import Settings
from signoff.db import Database
from signoff.errors import AppError
from signoff.models import (
    ACTIVE_RUN_STATUSES,
    Run,
    RunTrigger,
    User,
    Workflow,
    WorkflowStatus,
    WorkflowStep,
)
from signoff.runs import service as run_service
from signoff.workflows import repository as workflow_repository
from signoff.workflows import service as workflow_service
from signoff.workflows.schemas import EditStepsRequest, ScheduleChange, StepIn
from tests.support.engine import PERSON, new_owner
from tests.support.postgres import start_until_it_waits

pytestmark = pytest.mark.postgres(only=True)  # SQLite's writes are serial: nothing interleaves

TOOLS = ("web_search", "generate_outline", "format_post")
UNAPPROVED = EditStepsRequest(
    mode="replace",
    steps=[StepIn(description=f"Unapproved {tool}", tool_name=tool) for tool in TOOLS],
)


async def _workflow(
    database: Database, settings: Settings, status: WorkflowStatus
) -> tuple[User, str]:
    async with database.write() as session:
        user, team = await new_owner(session, settings)
        workflow = Workflow(
            team_id=team.id, title="Post", goal="A post", status=status, planned_by="test"
        )
        workflow.steps = [
            WorkflowStep(
                step_index=index,
                description=f"Approved {tool}",
                tool_name=tool,
                tool_input={},
                requires_approval=tool == "format_post",
            )
            for index, tool in enumerate(TOOLS)
        ]
        session.add(workflow)
        await session.flush()
    return user, workflow.id


async def _outcome(change: object) -> str:
    try:
        await change  # type: ignore[misc]
    except AppError as error:
        return error.error_code
    return "done"


async def _edit(database: Database, settings: Settings, workflow_id: str) -> str:
    async with database.write() as session:
        workflow = await workflow_repository.get_with_steps(session, workflow_id)
        assert workflow is not None
        return await _outcome(
            workflow_service.edit_steps(session, settings, workflow, UNAPPROVED, PERSON)
        )


async def _plan_that_runs(database: Database, workflow_id: str) -> tuple[WorkflowStatus, int]:
    async with database.read() as session:
        workflow = await workflow_repository.get_with_steps(session, workflow_id)
        assert workflow is not None
        if workflow.status == WorkflowStatus.ACTIVE:
            assert workflow.steps[0].description.startswith("Approved")
        return workflow.status, workflow.plan_revision


async def test_an_edit_read_before_an_approval_committed_is_refused(
    database: Database, settings: Settings
) -> None:
    _, workflow_id = await _workflow(database, settings, WorkflowStatus.DRAFT)
    async with database.write() as editing:
        workflow = await workflow_repository.get_with_steps(editing, workflow_id)
        assert workflow is not None
        assert workflow.status == WorkflowStatus.DRAFT
        async with database.write() as approving:
            await workflow_service.activate(
                approving, settings, workflow_id, revision=1, actor=PERSON
            )
        edited = await _outcome(
            workflow_service.edit_steps(editing, settings, workflow, UNAPPROVED, PERSON)
        )
    assert edited == "not_draft"
    assert await _plan_that_runs(database, workflow_id) == (WorkflowStatus.ACTIVE, 1)


async def test_an_edit_waits_for_an_approval_in_progress_and_is_refused(
    database: Database, settings: Settings
) -> None:
    _, workflow_id = await _workflow(database, settings, WorkflowStatus.DRAFT)
    async with database.write() as approving:
        await workflow_service.activate(approving, settings, workflow_id, revision=1, actor=PERSON)
        editing = await start_until_it_waits(
            database, _edit(database, settings, workflow_id), "the edit"
        )
    assert await editing == "not_draft"
    assert await _plan_that_runs(database, workflow_id) == (WorkflowStatus.ACTIVE, 1)


async def test_of_two_edits_read_at_one_revision_the_second_is_refused(
    database: Database, settings: Settings
) -> None:
    _, workflow_id = await _workflow(database, settings, WorkflowStatus.DRAFT)
    async with database.write() as second:
        workflow = await workflow_repository.get_with_steps(second, workflow_id)
        assert workflow is not None
        assert await _edit(database, settings, workflow_id) == "done"
        edited = await _outcome(
            workflow_service.edit_steps(second, settings, workflow, UNAPPROVED, PERSON)
        )
    assert edited == "plan_changed"
    assert await _plan_that_runs(database, workflow_id) == (WorkflowStatus.DRAFT, 2)


async def _active_runs(database: Database, workflow_id: str) -> tuple[WorkflowStatus, int]:
    async with database.read() as session:
        status = await session.scalar(select(Workflow.status).where(Workflow.id == workflow_id))
        active = await session.scalar(
            select(func.count())
            .select_from(Run)
            .where(Run.workflow_id == workflow_id, Run.status.in_(ACTIVE_RUN_STATUSES))
        )
    assert status is not None
    return status, int(active or 0)


async def _archive(database: Database, workflow_id: str) -> str:
    async with database.write() as session:
        workflow = await workflow_repository.get_with_steps(session, workflow_id)
        assert workflow is not None
        return await _outcome(workflow_service.archive(session, workflow, PERSON))


async def test_a_run_start_read_before_an_archive_committed_is_refused(
    database: Database, settings: Settings
) -> None:
    user, workflow_id = await _workflow(database, settings, WorkflowStatus.ACTIVE)
    async with database.write() as starting:
        workflow = await workflow_repository.get_with_steps(starting, workflow_id)
        assert workflow is not None
        assert await _archive(database, workflow_id) == "done"
        started = await _outcome(
            run_service.start_run(
                starting, settings, workflow, trigger=RunTrigger.MANUAL, started_by=user.id
            )
        )
    assert started == "workflow_not_active"
    assert await _active_runs(database, workflow_id) == (WorkflowStatus.ARCHIVED, 0)


async def test_an_archive_waits_for_a_run_start_in_progress_and_is_refused(
    database: Database, settings: Settings
) -> None:
    user, workflow_id = await _workflow(database, settings, WorkflowStatus.ACTIVE)
    async with database.write() as starting:
        workflow = await workflow_repository.get_with_steps(starting, workflow_id)
        assert workflow is not None
        await run_service.start_run(
            starting, settings, workflow, trigger=RunTrigger.MANUAL, started_by=user.id
        )
        archiving = await start_until_it_waits(
            database, _archive(database, workflow_id), "the archive"
        )
    assert await archiving == "run_active"
    assert await _active_runs(database, workflow_id) == (WorkflowStatus.ACTIVE, 1)


async def test_a_schedule_removed_as_the_plan_is_approved_leaves_nothing_armed(
    database: Database, settings: Settings
) -> None:
    _, workflow_id = await _workflow(database, settings, WorkflowStatus.DRAFT)
    async with database.write() as session:
        workflow = await session.get(Workflow, workflow_id)
        assert workflow is not None
        workflow.schedule = "0 9 * * *"
    async with database.write() as changing:
        workflow = await workflow_repository.get_with_steps(changing, workflow_id)
        assert workflow is not None
        assert workflow.status == WorkflowStatus.DRAFT
        async with database.write() as approving:
            await workflow_service.activate(
                approving, settings, workflow_id, revision=1, actor=PERSON
            )
        await workflow_service.change_schedule(
            changing, workflow, ScheduleChange(schedule=None), PERSON
        )
    async with database.read() as session:
        stored = await session.get(Workflow, workflow_id)
    assert stored is not None
    assert (stored.status, stored.schedule, stored.next_run_at) == (
        WorkflowStatus.ACTIVE,
        None,
        None,
    )
