"""The step agents, one per tool, built once and shared by every step that uses the tool.

The tool is the agent's output function, so the model's single request that calls it completes
the step: one request per step, not a tool call followed by a summary."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from pydantic_ai import Agent, ToolOutput

from signoff.runs.prompts import STEP_INSTRUCTIONS
from signoff.tools import content, team_memory, web
from signoff.tools.base import ToolContext, ToolResult
from signoff.tools.registry import TOOLS

ToolFunction = Callable[..., Awaitable[ToolResult]]

TOOL_FUNCTIONS: dict[str, ToolFunction] = {
    "web_search": web.web_search,
    "web_extract": web.web_extract,
    "generate_outline": content.generate_outline,
    "generate_report": content.generate_report,
    "format_post": content.format_post,
    "generate_image": web.generate_image,
    "memory": team_memory.memory,
    "llm_response": content.llm_response,
}
assert TOOL_FUNCTIONS.keys() == TOOLS.keys(), "every tool of the catalogue has a function"

# A model that fumbles the tool's arguments gets one more chance within the step; beyond that
# the step fails and the engine's own retries take over.
STEP_OUTPUT_RETRIES = 1


def _build(name: str, function: ToolFunction) -> Agent[ToolContext, ToolResult]:
    output: Any = ToolOutput(
        function,
        name=name,
        description=TOOLS[name].summary,
        max_retries=STEP_OUTPUT_RETRIES,
        strict=False,
    )
    return Agent(
        output_type=output,
        deps_type=ToolContext,
        instructions=STEP_INSTRUCTIONS,
        name=f"step:{name}",
    )


_AGENTS: dict[str, Agent[ToolContext, ToolResult]] = {
    name: _build(name, function) for name, function in TOOL_FUNCTIONS.items()
}


def step_agent(tool_name: str) -> Agent[ToolContext, ToolResult]:
    """The agent for a step that uses ``tool_name`` (a name from the catalogue)."""
    return _AGENTS[tool_name]
