"""Tools whose content the model writes itself: outline, report, post, free-form answer.

The model fills in the arguments (the outline, the post…) in its one request; the tool checks
and shapes them into the result the agent sees and the asset that is stored.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field
from pydantic_ai import ModelRetry, RunContext

from signoff.tools.base import ToolContext, ToolResult

Platform = Literal["linkedin", "x", "newsletter", "blog", "other"]
PLATFORM_LIMITS = {"x": 280, "linkedin": 3000}


class OutlineSection(BaseModel):
    heading: str = Field(description="The section's heading.")
    points: list[str] = Field(description="The key points of the section, one line each.")


async def generate_outline(
    ctx: RunContext[ToolContext], title: str, sections: list[OutlineSection]
) -> ToolResult:
    """Structure the content before it is written: a title and sections of key points,
    built from what earlier steps found."""
    if not title.strip() or not sections:
        raise ModelRetry("An outline needs a title and at least one section.")
    lines = [f"# {title.strip()}", ""]
    for section in sections:
        lines.append(f"## {section.heading.strip()}")
        lines.extend(f"- {point.strip()}" for point in section.points if point.strip())
        lines.append("")
    content = "\n".join(lines).strip()
    return ToolResult(
        text=content,
        asset_type="post_outline",
        content=content,
        data={"title": title.strip(), "sections": [s.model_dump() for s in sections]},
    )


async def generate_report(ctx: RunContext[ToolContext], title: str, body: str) -> ToolResult:
    """Write an internal research summary for the team, in Markdown."""
    if not body.strip():
        raise ModelRetry("The report's body is empty.")
    content = f"# {title.strip()}\n\n{body.strip()}" if title.strip() else body.strip()
    return ToolResult(
        text=content, asset_type="report", content=content, data={"title": title.strip()}
    )


async def format_post(
    ctx: RunContext[ToolContext], platform: Platform, text: str, hashtags: list[str]
) -> ToolResult:
    """Write the final post for the platform: its text and hashtags. A person approves it
    before anything is published."""
    text = text.strip()
    if not text:
        raise ModelRetry("The post's text is empty.")
    tags = [f"#{tag.strip().lstrip('#')}" for tag in hashtags if tag.strip().lstrip("#")]
    content = text + ("\n\n" + " ".join(tags) if tags else "")
    limit = PLATFORM_LIMITS.get(platform)
    if limit is not None and len(content) > limit:
        raise ModelRetry(f"A {platform} post may have at most {limit} characters; shorten it.")
    return ToolResult(
        text=content,
        asset_type="social_post",
        content=content,
        data={"platform": platform, "text": text, "hashtags": tags},
        mime_type="text/plain",
    )


async def llm_response(ctx: RunContext[ToolContext], text: str) -> ToolResult:
    """Answer in free form: summarise, explain, or bridge between steps."""
    if not text.strip():
        raise ModelRetry("The answer is empty.")
    return ToolResult(text=text.strip())
