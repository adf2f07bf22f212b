"""Building blocks for engine tests: a scripted model, a recording queue, a ready workflow."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from pydantic_ai.messages import ModelMessage, ModelResponse, ToolCallPart
from pydantic_ai.models.function import AgentInfo, FunctionModel
from sqlalchemy.ext.asyncio import AsyncSession

from signoff.audit.service import Actor, Channel
from signoff.auth import service as auth_service
from signoff.config import Settings
from signoff.db import Database
from signoff.kit.ids import new_id
from signoff.models import RunTrigger, Team, User, Workflow, WorkflowStatus, WorkflowStep
from signoff.queue.jobs import StepJob
from signoff.runs import service as run_service
from signoff.runtime import OFFLINE_HANDLERS as HANDLERS

# Who decides or stops in engine tests that call the services directly.
PERSON = Actor(channel=Channel.API, label="tester@example.com")


@dataclass
class RecordingQueue:
    """A JobQueue that only records what was enqueued; tests run the jobs themselves."""

    jobs: list[tuple[StepJob, datetime | None]] = field(default_factory=list)

    async def enqueue(self, job: StepJob, *, not_before: datetime | None = None) -> None:
        self.jobs.append((job, not_before))

    def last(self) -> StepJob:
        return self.jobs[-1][0]


class ScriptedModel:
    """The offline model's answers, with hooks: hold a call at a gate, or raise errors first."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, list[ModelMessage]]] = []
        self.errors: list[BaseException] = []
        self.errors_at: dict[int, BaseException] = {}  # call number (1, 2, …) → its error
        self.gate: asyncio.Event | None = None
        self.gate_after = 0  # the gate holds the first call after this many calls
        self.entered = asyncio.Event()
        self.held = asyncio.Event()  # a call is waiting at the gate
        self.cancelled = asyncio.Event()  # a call was cancelled while held at the gate

    async def __call__(self, messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        tool = info.output_tools[0].name
        self.calls.append((tool, list(messages)))
        self.entered.set()
        if self.gate is not None and len(self.calls) > self.gate_after:
            gate, self.gate = self.gate, None
            self.held.set()
            try:
                await gate.wait()
            except asyncio.CancelledError:
                self.cancelled.set()
                raise
        if len(self.calls) in self.errors_at:
            raise self.errors_at.pop(len(self.calls))
        if self.errors:
            raise self.errors.pop(0)
        return ModelResponse(parts=[ToolCallPart(tool, HANDLERS[tool](messages, info))])

    def model(self) -> FunctionModel:
        return FunctionModel(self, model_name="scripted")

    def tools_called(self) -> list[str]:
        return [tool for tool, _ in self.calls]


async def new_owner(session: AsyncSession, settings: Settings) -> tuple[User, Team]:
    """A new person at a fresh address, owner of a team of their own (no password to sign in
    with: for tests below the HTTP API)."""
    return await auth_service.signup(
        session,
        settings,
        email=f"{new_id()}@example.com",
        password_hash="not-a-real-hash",
        name="Owner",
    )


async def active_workflow_run(
    db: Database,
    settings: Settings,
    tools: Sequence[str] = ("web_search", "generate_outline", "format_post"),
) -> tuple[str, int, StepJob]:
    """An owner, an active workflow with these steps, and its started run (not yet queued)."""
    async with db.write() as session:
        user, team = await new_owner(session, settings)
        workflow = Workflow(
            team_id=team.id,
            title="AI news post",
            goal="Publish a LinkedIn post about AI news",
            status=WorkflowStatus.ACTIVE,
            planned_by="test",
        )
        workflow.steps = [
            WorkflowStep(
                step_index=index,
                description=f"Step using {tool}",
                tool_name=tool,
                tool_input={"query": "AI news"} if tool == "web_search" else {},
                requires_approval=tool in ("format_post", "generate_image"),
            )
            for index, tool in enumerate(tools)
        ]
        session.add(workflow)
        await session.flush()
        run, job = await run_service.start_run(
            session, settings, workflow, trigger=RunTrigger.MANUAL, started_by=user.id
        )
    return workflow.id, run.id, job
