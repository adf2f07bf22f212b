"""The offline model's step handlers read the research in the conversation; a research step
that found nothing (no provider configured, a page that could not be read) gives them nothing
to quote, so an outline never turns a tool's error message into a "key point"."""

from __future__ import annotations

from typing import Any

from pydantic_ai.messages import (
    ModelMessage,
    ModelRequest,
    ModelResponse,
    ToolCallPart,
    ToolReturnPart,
    UserPromptPart,
)

from signoff.tools.offline import generate_outline

GOAL = "<untrusted goal>\nPublish a weekly LinkedIn post about AI news\n</untrusted goal>"


def conversation(search_result: str) -> list[ModelMessage]:
    return [
        ModelRequest(parts=[UserPromptPart(f"{GOAL}\nStep 1 of 2: Search the web for AI news")]),
        ModelResponse(parts=[ToolCallPart("web_search", {"query": "AI news"}, tool_call_id="c1")]),
        ModelRequest(parts=[ToolReturnPart("web_search", search_result, tool_call_id="c1")]),
        ModelRequest(parts=[UserPromptPart("Step 2 of 2: Outline a LinkedIn post")]),
    ]


def key_points(outline: dict[str, Any]) -> list[str]:
    [section] = [s for s in outline["sections"] if s["heading"] == "Key points"]
    points: list[str] = section["points"]
    return points


def test_outline_quotes_the_research() -> None:
    found = "1. Open models close the gap with frontier labs on coding benchmarks this week."
    outline = generate_outline(conversation(found), None)  # type: ignore[arg-type]
    assert key_points(outline) == [
        "Open models close the gap with frontier labs on coding benchmarks this week."
    ]


def test_outline_does_not_quote_a_failed_search() -> None:
    failed = (
        "Web search failed: No web search provider is configured (set SIGNOFF_SEARCH_PROVIDER "
        "to tavily or brave with SIGNOFF_SEARCH_API_KEY, or to searxng with SIGNOFF_SEARXNG_URL)."
    )
    outline = generate_outline(conversation(failed), None)  # type: ignore[arg-type]
    points = key_points(outline)
    assert not any("failed" in point or "SIGNOFF_" in point for point in points)
    assert points[0].startswith("What is new in")


def test_outline_does_not_quote_a_search_that_found_nothing() -> None:
    nothing = 'Web search for "open-weight coding models this week" found no results.'
    outline = generate_outline(conversation(nothing), None)  # type: ignore[arg-type]
    points = key_points(outline)
    assert not any("found no results" in point for point in points)
    assert points[0].startswith("What is new in")
