"""The CPU cost of the LLM library's part of a step, measured in this process.

One step = one ``step_agent(tool).run(...)`` with the built-in offline model (zero latency), the
same prompt the engine builds and the run's message history so far, followed by
``result.new_messages(...)`` as the engine calls it. Five steps in the bench's plan order make
one run; the history grows exactly as it does in a real run. What this includes: pydantic-ai
(agent graph, validation of the tool call, usage, message objects), the offline model's own
handler (which stands in for a remote model's work) and the tool function itself (the memory
tool reads the team's notes from SQLite). What it excludes: everything the engine does around
the call (claim, lease, loading and storing the conversation, recording, emails, the queue).
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

PLAN_GOAL = (
    "Using our brand voice, research the latest news about electric bikes and write a short "
    "report for the team"
)
PLAN_TITLE = "Research the latest news about electric bikes"

# Five steps, none approval-gated (the bench's workflows use exactly this plan).
FIVE_STEPS: list[dict[str, Any]] = [
    {
        "description": "Search the web for the latest news on electric bikes",
        "toolName": "web_search",
        "toolInput": {"query": "electric bikes news"},
    },
    {
        "description": "Outline a post about electric bikes from the research",
        "toolName": "generate_outline",
        "toolInput": {"topic": "electric bikes", "platform": "linkedin"},
    },
    {
        "description": "Write a report on electric bikes",
        "toolName": "generate_report",
        "toolInput": {"topic": "electric bikes"},
    },
    {
        "description": "Read the team's brand voice and notes from memory",
        "toolName": "memory",
        "toolInput": {"action": "view"},
    },
    {
        "description": "Summarise the findings for the team",
        "toolName": "llm_response",
        "toolInput": {"instruction": "Summarise the findings on electric bikes for the team."},
    },
]


async def measure(runs: int, warmup: int = 3) -> dict[str, Any]:
    """CPU seconds per agent run (mean over ``runs`` runs of five steps), in total and by tool."""
    from signoff.config import Settings
    from signoff.db import Database
    from signoff.llm.models import model_settings
    from signoff.migrations.runner import upgrade
    from signoff.models import RunStep
    from signoff.runs.agents import step_agent
    from signoff.runs.prompts import run_opening, step_text
    from signoff.runtime import offline_model
    from signoff.tools.base import ToolContext

    with tempfile.TemporaryDirectory(prefix="signoff_bench_agent_") as scratch:
        url = f"sqlite+aiosqlite:///{Path(scratch) / 'agent.db'}"
        await asyncio.to_thread(upgrade, url)
        settings = Settings(_env_file=None, data_dir=Path(scratch), llm_model="offline")
        db = Database.from_url(url)
        model = offline_model()
        steps = [
            RunStep(
                step_index=index,
                description=step["description"],
                tool_name=step["toolName"],
                tool_input=step["toolInput"],
                approval_prompt=None,
            )
            for index, step in enumerate(FIVE_STEPS)
        ]
        opening = run_opening(
            team_name="Bench team", title=PLAN_TITLE, goal=PLAN_GOAL, core_memory=None
        )
        per_tool: dict[str, list[float]] = {step.tool_name: [] for step in steps}
        try:
            for number in range(warmup + runs):
                history: list[Any] = []
                for step in steps:
                    prompt = step_text(
                        step_index=step.step_index,
                        step_count=len(steps),
                        description=step.description,
                        tool_name=step.tool_name,
                        tool_input=step.tool_input,
                        approval_prompt=step.approval_prompt,
                    )
                    if step.step_index == 0:
                        prompt = f"{opening}\n\n{prompt}"
                    deps = ToolContext(
                        settings=settings,
                        db=db,
                        team_id="bench-team",
                        workflow_id="bench-workflow",
                        run_id=number + 1,
                        step_index=step.step_index,
                        attempt=1,
                    )
                    before = time.process_time()
                    result = await step_agent(step.tool_name).run(
                        prompt,
                        message_history=history or None,
                        model=model,
                        deps=deps,
                        model_settings=model_settings(settings),
                    )
                    history += result.new_messages(output_tool_return_content=result.output.text)
                    spent = time.process_time() - before
                    if number >= warmup:
                        per_tool[step.tool_name].append(spent)
        finally:
            await db.dispose()
    every = [value for values in per_tool.values() for value in values]
    return {
        "mean": statistics.fmean(every),
        "median": statistics.median(every),
        "by_tool": {tool: statistics.fmean(values) for tool, values in per_tool.items()},
        "samples": len(every),
    }
