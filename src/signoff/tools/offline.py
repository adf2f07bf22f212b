"""The offline model's step execution: every tool answered from the run's conversation.

Deterministic and readable: an outline is built from the research earlier in the
conversation, a post from the outline, and a revision after a rejection visibly does what the
feedback asked. The offline model's handlers for the step tools (:data:`HANDLERS`).
"""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic_ai.messages import (
    ModelMessage,
    ModelRequest,
    ModelResponse,
    ToolCallPart,
    ToolReturnPart,
)
from pydantic_ai.models.function import AgentInfo

from signoff.llm.offline import Handler, user_texts
from signoff.tools import extract, search

_STEP = re.compile(r"^Step \d+ of \d+: (?P<description>.*)$", re.MULTILINE)
_INPUT = re.compile(r"^Tool input from the plan: (?P<json>.*)$", re.MULTILINE)
_GOAL = re.compile(r"<untrusted goal>\n(?P<goal>.*?)\n</untrusted goal>", re.DOTALL)
_FEEDBACK = re.compile(r"^Rejected\. Feedback: (?P<note>.*)\. Please revise\.$", re.DOTALL)
_FENCE = re.compile(r"</?untrusted[^>]*>")
_URL = re.compile(r"https?://[^\s<>\"')]+")
_STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "the",
        "of",
        "for",
        "to",
        "in",
        "on",
        "about",
        "with",
        "every",
        "each",
        "our",
        "your",
        "their",
        "is",
        "are",
        "be",
        "this",
        "that",
        "post",
        "write",
        "publish",
        "weekly",
        "daily",
        "monthly",
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "morning",
        "linkedin",
        "twitter",
        "tweet",
        "newsletter",
        "blog",
        "research",
        "find",
        "latest",
        "news",
        "summary",
        "summarise",
        "summarize",
        "report",
        "create",
        "make",
        "draft",
        "it",
        "its",
        "from",
        "by",
        "at",
        "as",
    ]
)


def _goal(messages: list[ModelMessage]) -> str:
    for text in user_texts(messages):
        match = _GOAL.search(text)
        if match:
            return match.group("goal").strip()
    return ""


def _current_step(messages: list[ModelMessage]) -> tuple[str, dict[str, Any]]:
    """The description and plan input of the step being executed (the last step message)."""
    for text in reversed(user_texts(messages)):
        step = _STEP.search(text)
        if step:
            match = _INPUT.search(text)
            try:
                tool_input = json.loads(match.group("json")) if match else {}
            except json.JSONDecodeError:
                tool_input = {}
            return step.group("description").strip(), tool_input if isinstance(
                tool_input, dict
            ) else {}
    return "", {}


def _feedback(messages: list[ModelMessage]) -> str | None:
    """The person's feedback, if the last thing they said was a rejection."""
    texts = user_texts(messages)
    if texts:
        match = _FEEDBACK.match(texts[-1].strip())
        if match:
            note = match.group("note").strip()
            return None if note == "No feedback was given" else note
    return None


def _tool_returns(messages: list[ModelMessage], *names: str) -> list[str]:
    return [
        part.model_response_str()
        for message in messages
        if isinstance(message, ModelRequest)
        for part in message.parts
        if isinstance(part, ToolReturnPart) and part.tool_name in names
    ]


def _last_call(messages: list[ModelMessage], name: str) -> dict[str, Any] | None:
    for message in reversed(messages):
        if isinstance(message, ModelResponse):
            for part in message.parts:
                if isinstance(part, ToolCallPart) and part.tool_name == name:
                    return part.args_as_dict()
    return None


# How web_search and web_extract begin a result that holds no research.
_NO_RESEARCH = (search.FAILED, search.NOTHING_FOUND, extract.FAILED)


def _research_lines(messages: list[ModelMessage], limit: int = 4) -> list[str]:
    """Readable sentences from the research: search results and extracted pages."""
    lines: list[str] = []
    for text in _tool_returns(messages, "web_search", "web_extract"):
        if text.startswith(_NO_RESEARCH):
            continue  # no research: the step says so in its own words, not the tool's error
        for raw in _FENCE.sub("", text).splitlines():
            line = raw.strip().lstrip("-*•0123456789.) ").strip()
            if line.lower().startswith(("url:", "source:", "http", "note:", "these ", "the text")):
                continue
            if 30 <= len(line) <= 240 and not _URL.fullmatch(line):
                sentence = re.split(r"(?<=[.!?])\s", line)[0].strip()
                if sentence and sentence not in lines:
                    lines.append(sentence.rstrip(".") + ".")
            if len(lines) >= limit:
                return lines
    return lines


def _topic(goal: str, tool_input: dict[str, Any], description: str) -> str:
    for key in ("topic", "query", "subject", "prompt"):
        value = tool_input.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return goal or description


def _keywords(text: str, limit: int = 3) -> list[str]:
    words = [w for w in re.findall(r"[A-Za-z][A-Za-z0-9]+", text) if w.lower() not in _STOPWORDS]
    seen: list[str] = []
    for word in words:
        tag = word if word.isupper() else word.capitalize()
        if tag.lower() not in (s.lower() for s in seen):
            seen.append(tag)
        if len(seen) >= limit:
            break
    return seen


def _title_case(text: str) -> str:
    text = text.strip().rstrip(".")
    return text[:1].upper() + text[1:]


# --- handlers -----------------------------------------------------------------------------


def web_search(messages: list[ModelMessage], info: AgentInfo) -> dict[str, Any]:
    description, tool_input = _current_step(messages)
    query = tool_input.get("query") or _topic(_goal(messages), tool_input, description)
    return {"query": str(query)[:200], "max_results": int(tool_input.get("max_results", 5) or 5)}


def web_extract(messages: list[ModelMessage], info: AgentInfo) -> dict[str, Any]:
    description, tool_input = _current_step(messages)
    url = tool_input.get("url")
    if not url:
        found = _URL.findall(" ".join([_goal(messages), description]))
        url = found[0] if found else ""
    return {"url": str(url)}


def generate_outline(messages: list[ModelMessage], info: AgentInfo) -> dict[str, Any]:
    description, tool_input = _current_step(messages)
    goal = _goal(messages)
    topic = _topic(goal, tool_input, description)
    research = _research_lines(messages)
    if research:
        findings = research[:3]
    else:
        findings = [
            f"What is new in {topic} and why it matters to our audience.",
            "One concrete example the reader will recognise.",
        ]
    sections = [
        {"heading": "Hook", "points": [f"Open with the single most useful idea about {topic}."]},
        {"heading": "Key points", "points": findings},
        {
            "heading": "Takeaway",
            "points": ["What the reader can do with this today.", "Invite replies and questions."],
        },
    ]
    feedback = _feedback(messages)
    if feedback:
        sections.append({"heading": "From the feedback", "points": [_title_case(feedback) + "."]})
    return {"title": _title_case(topic)[:120], "sections": sections}


def generate_report(messages: list[ModelMessage], info: AgentInfo) -> dict[str, Any]:
    description, tool_input = _current_step(messages)
    topic = _topic(_goal(messages), tool_input, description)
    research = _research_lines(messages, limit=6)
    findings = (
        "\n".join(f"- {line}" for line in research)
        if research
        else "- No web research was available to this run; the points below follow the goal.\n"
        f"- {_title_case(topic)}."
    )
    sources = sorted(
        set(_URL.findall("\n".join(_tool_returns(messages, "web_search", "web_extract"))))
    )
    body = f"## Summary\n\n{_title_case(description or topic)}.\n\n## Findings\n\n{findings}\n"
    if sources:
        body += "\n## Sources\n\n" + "\n".join(f"- {url}" for url in sources[:8]) + "\n"
    feedback = _feedback(messages)
    if feedback:
        body += f"\n## Revision\n\n{_title_case(feedback)}.\n"
    return {"title": f"Report: {_title_case(topic)}"[:120], "body": body}


def _apply_feedback(paragraphs: list[str], feedback: str) -> list[str]:
    wanted = feedback.lower()
    if any(word in wanted for word in ("short", "concise", "brief", "tighter", "too long")):
        paragraphs = paragraphs[:2]
    if "emoji" in wanted:
        paragraphs = [f"🚀 {paragraphs[0]}", *paragraphs[1:]]
    if any(word in wanted for word in ("formal", "professional", "less hype")):
        paragraphs = [p.replace("!", ".") for p in paragraphs]
    if "question" in wanted:
        paragraphs.append("What would you add?")
    # Whatever else was asked, say it in the post itself: the revision must visibly use it.
    paragraphs.append(_title_case(feedback) + ".")
    return paragraphs


def format_post(messages: list[ModelMessage], info: AgentInfo) -> dict[str, Any]:
    description, tool_input = _current_step(messages)
    goal = _goal(messages)
    platform = str(tool_input.get("platform") or "linkedin").lower()
    if platform not in ("linkedin", "x", "newsletter", "blog", "other"):
        platform = "x" if platform == "twitter" else "other"
    outline = _last_call(messages, "generate_outline") or {}
    title = str(outline.get("title") or _topic(goal, tool_input, description))
    points: list[str] = []
    for section in outline.get("sections") or []:
        if isinstance(section, dict) and section.get("heading") == "Key points":
            points = [str(point) for point in section.get("points") or []]
    if not points:
        points = _research_lines(messages, limit=3) or [f"Here is what stands out about {title}."]
    paragraphs = [
        f"{_title_case(title)}: here is what stood out this week.",
        "\n".join(f"• {point}" for point in points[:3]),
        "Which of these matters most to you? Tell me in the comments.",
    ]
    feedback = _feedback(messages)
    if feedback:
        paragraphs = _apply_feedback(paragraphs, feedback)
    hashtags = _keywords(" ".join([title, goal]))
    text = "\n\n".join(paragraphs)
    if platform == "x":
        text = paragraphs[0] if not feedback else f"{paragraphs[0]} {paragraphs[-1]}"
        text = text[: 280 - 2 - sum(len(tag) + 2 for tag in hashtags[:2])].rstrip()
        hashtags = hashtags[:2]
    return {"platform": platform, "text": text, "hashtags": hashtags}


def generate_image(messages: list[ModelMessage], info: AgentInfo) -> dict[str, Any]:
    description, tool_input = _current_step(messages)
    prompt = tool_input.get("prompt") or (
        f"A clean, modern illustration about {_topic(_goal(messages), tool_input, description)}"
    )
    feedback = _feedback(messages)
    if feedback:
        prompt = f"{prompt}. {_title_case(feedback)}"
    return {"prompt": str(prompt)[:1000], "alt_text": _title_case(description)[:200]}


def memory(messages: list[ModelMessage], info: AgentInfo) -> dict[str, Any]:
    description, tool_input = _current_step(messages)
    action = str(tool_input.get("action") or "view")
    if action not in ("view", "search", "save", "create", "update"):
        action = "view"
    args: dict[str, Any] = {"action": action}
    for key in ("key", "value", "query"):
        if tool_input.get(key):
            args[key] = str(tool_input[key])
    if action in ("save", "create", "update") and "value" not in args:
        args["value"] = _goal(messages) or description
    return args


def llm_response(messages: list[ModelMessage], info: AgentInfo) -> dict[str, Any]:
    description, _tool_input = _current_step(messages)
    research = _research_lines(messages, limit=3)
    lines = [f"{_title_case(description)}."] if description else []
    if research:
        lines.append("From what this run found so far:")
        lines.extend(f"- {line}" for line in research)
    else:
        goal = _goal(messages)
        if goal:
            lines.append(f"This answers the goal: {goal}")
    feedback = _feedback(messages)
    if feedback:
        lines.append(f"Revised as asked: {feedback}.")
    return {"text": "\n".join(lines) or "Done."}


HANDLERS: dict[str, Handler] = {
    "web_search": web_search,
    "web_extract": web_extract,
    "generate_outline": generate_outline,
    "generate_report": generate_report,
    "format_post": format_post,
    "generate_image": generate_image,
    "memory": memory,
    "llm_response": llm_response,
}
