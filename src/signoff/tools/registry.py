"""The catalogue of the eight tools (docs/api.md, Tools), in that order.

It is the single source for the tool names (``ToolName``), for what the planner is told about
each tool, and for the approval rule: a tool with ``requires_approval`` produces something that
leaves the building (a post, an image), so every step that uses it waits for a person whatever a
plan says.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

ToolName = Literal[
    "web_search",
    "web_extract",
    "generate_outline",
    "generate_report",
    "format_post",
    "generate_image",
    "memory",
    "llm_response",
]


@dataclass(frozen=True)
class ToolSpec:
    """What Signoff knows about a tool before running it."""

    name: ToolName
    summary: str
    """One line for the planner prompt and the dashboard."""
    requires_approval: bool
    """True when every step with this tool waits for a person, whatever the plan says."""
    asset_type: str | None
    """The kind of asset the tool stores (``GET /api/assets?type=``), or None."""


TOOLS: dict[str, ToolSpec] = {
    spec.name: spec
    for spec in (
        ToolSpec(
            name="web_search",
            summary="Search the web for current facts, news and sources.",
            requires_approval=False,
            asset_type=None,
        ),
        ToolSpec(
            name="web_extract",
            summary="Fetch one web page (a URL) and extract its main text.",
            requires_approval=False,
            asset_type=None,
        ),
        ToolSpec(
            name="generate_outline",
            summary="Structure a post before it is written: angle, key points, call to action.",
            requires_approval=False,
            asset_type="post_outline",
        ),
        ToolSpec(
            name="generate_report",
            summary="Write an internal research summary (a report) for the team.",
            requires_approval=False,
            asset_type="report",
        ),
        ToolSpec(
            name="format_post",
            summary="Write the final post for linkedin, x, newsletter or blog: text and hashtags.",
            requires_approval=True,
            asset_type="social_post",
        ),
        ToolSpec(
            name="generate_image",
            summary="Create an image from a written prompt.",
            requires_approval=True,
            asset_type="image",
        ),
        ToolSpec(
            name="memory",
            summary="View or search the team's memory, or save a note under any key except core.",
            requires_approval=False,
            asset_type=None,
        ),
        ToolSpec(
            name="llm_response",
            summary="Write a free-form message: answer, summarise, explain or connect steps.",
            requires_approval=False,
            asset_type=None,
        ),
    )
}

# The Literal and the catalogue name the same tools, in the same order.
assert tuple(TOOLS) == get_args(ToolName)
