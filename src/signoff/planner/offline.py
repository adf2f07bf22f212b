"""The offline model's planning: a plan drafted from the words of the goal.

What a new user meets before configuring a real model, so it has to read well: the right tools
in a sensible order and concrete inputs (queries, topic, platform) taken from the goal. It is
the offline model's handler for the plan output tool (:data:`HANDLERS`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from pydantic_ai.messages import ModelMessage
from pydantic_ai.models.function import AgentInfo

from signoff.llm.offline import Handler, user_texts
from signoff.planner.prompts import read_goal
from signoff.planner.rules import MAX_TITLE_LENGTH, shorten_title
from signoff.planner.schemas import PLAN_TOOL_NAME, Plan, PlannedStep
from signoff.tools.registry import ToolName


def plan_handler(messages: list[ModelMessage], info: AgentInfo) -> dict[str, Any]:
    prompts = user_texts(messages)
    # The planner fences the goal; a prompt without the fence (a direct call) is the goal itself.
    goals = [goal for goal in map(read_goal, prompts) if goal is not None]
    goal = goals[0] if goals else (prompts[0] if prompts else "")
    return draft_offline_plan(goal).model_dump(mode="json", by_alias=True)


_URL = re.compile(r"https?://[^\s<>\"'`]+", re.IGNORECASE)
_DAYS = "monday|tuesday|wednesday|thursday|friday|saturday|sunday"
_PARTS_OF_DAY = "morning|afternoon|evening|night"
_CLOCK = r"\d{1,2}(?::\d{2})?\s*(?:am|pm)\b|\d{1,2}:\d{2}\b"
_SCHEDULE = re.compile(
    rf"""
    \b(?:every|each)\s+(?:other\s+)?
        (?:day|week(?:day)?|month|quarter|year|{_PARTS_OF_DAY}|{_DAYS})s?
        (?:\s+(?:{_PARTS_OF_DAY})s?)?
        (?:\s+at\s+(?:{_CLOCK}))?
    | \bon\s+(?:(?:{_DAYS})s|weekdays|weekends)
        (?:\s+(?:{_PARTS_OF_DAY})s?)?
        (?:\s+at\s+(?:{_CLOCK}))?
    | \bat\s+(?:{_CLOCK})
    | \b(?:daily|weekly|monthly|nightly)(?=\s*(?:[.,;!?]|$))
    """,
    re.IGNORECASE | re.VERBOSE,
)
_LEAD = re.compile(
    r"^(?:(?:please|kindly|can you|could you|would you|will you|help me|let's|let us"
    r"|i(?:'d| would)? (?:want|like|need)(?: you)? to|we (?:want|need|would like) to)\s+)+",
    re.IGNORECASE,
)
_LEAD_VERBS = re.compile(
    r"^(?:(?:research|find(?: out)?|search(?: for)?|look up|monitor|track|keep an eye on|follow"
    r"|write|create|draft|compose|prepare|publish|post|make|generate|produce|summari[sz]e"
    r"|send(?: me)?|share|give me|tell me|get(?: me)?|collect|gather|compile|read|check"
    r"|remember|save|store|note)\s+)+",
    re.IGNORECASE,
)
_DETERMINERS = re.compile(r"^(?:(?:the|a|an|our|my|your|their|some)\s+)+", re.IGNORECASE)

_RESEARCH_BEYOND_PAGES = re.compile(
    r"\b(?:research\w*|news|latest|trend(?:s|ing)?|search\w*|recent|current|updates"
    r"|developments|what'?s new|happening)\b",
    re.IGNORECASE,
)
_RESEARCH = re.compile(
    rf"{_RESEARCH_BEYOND_PAGES.pattern}|\b(?:find|look(?:ing)? up|monitor\w*|track(?:ing)?)\b",
    re.IGNORECASE,
)
_POST = re.compile(
    r"\b(?:posts?(?!-)|linkedin|tweets?|twitter|newsletters?|blog\w*)\b"
    r"|\b(?:on|to|for)\s+X\b|\bX\s+(?:post|thread)s?\b|\bx\.com\b",
    re.IGNORECASE,
)
_X = re.compile(r"\b(?:tweets?|twitter|x\.com)\b|\b(?:on|to|for)\s+X\b|\bX\s+(?:post|thread)")
_IMAGE = re.compile(
    r"\b(?:images?|visuals?|pictures?|illustrat\w*|photos?|graphics?|banners?|thumbnails?"
    r"|artwork)\b",
    re.IGNORECASE,
)
_REPORT = re.compile(
    r"\b(?P<kind>reports?|briefings?|digests?|overview|brief)\b"
    r"(?!\s+(?:post|tweet|note|message|answer|reply|intro|description))",
    re.IGNORECASE,
)
_SUMMARY = re.compile(r"\bsummar(?:y|ies|i[sz]e\w*)\b", re.IGNORECASE)
_MEMORY = re.compile(
    r"\b(?:brand\w*|memory|remember\w*|tone of voice|our voice|style guide)\b", re.IGNORECASE
)
_SAVE = re.compile(r"^(?:remember|memori[sz]e|save|store|note)\b(?:\s+that)?\s*", re.IGNORECASE)
_QUESTION = re.compile(
    r"(?:\?\s*$)|^(?:what|how|why|who|when|where|which|should|can|could|is|are|do|does)\b",
    re.IGNORECASE,
)

# "about X" names the topic; "on/of/for/into X" does unless X is a platform, a day or a person.
_STRONG_TOPIC = re.compile(
    r"\b(?:about|regarding|covering|concerning|on the (?:topic|subject) of)\s+", re.IGNORECASE
)
_WEAK_TOPIC = re.compile(r"\b(?P<prep>on|of|for|into)\s+", re.IGNORECASE)
_NOT_A_TOPIC = re.compile(
    rf"^(?:linkedin|twitter|x\b|(?:the|our)\s+(?:blog|website|newsletter|team|company page)"
    r"|(?:an?\s+|the\s+)?(?:short\s+)?(?:report|brief|summary|digest|post|tweet|image|picture)\b"
    rf"|me\b|us\b|the team\b|our team\b|(?:{_DAYS})s?\b|weekdays|weekends)",
    re.IGNORECASE,
)
_TOPIC_END = re.compile(
    rf"""
    \s*[.;:!?](?:\s|$) | \s*,
    | \s+(?:and|then|so|to)\s+(?:then\s+)?(?:send|write|post|publish|create|make|draft|add
        |share|email|generate|turn|summari[sz]e|tell|give|include|save|remember|notify|put
        |illustrate)\b
    | \s+(?:every|each)\s | \s+(?:daily|weekly|monthly)\b
    | \s+(?:on|for|to)\s+(?:linkedin|twitter|x\b|me\b|us\b|the team\b|our team\b
        |(?:our|the)\s+(?:blog|newsletter|website)|(?:{_DAYS})s?\b)
    | \s+(?:as|in)\s+(?:an?\s+)?(?:linkedin|tweet|post|thread|newsletter|blog|report|brief)
    | \s+(?:with|plus|and)\s+(?:an?\s+)?(?:\w+\s+)?(?:image|picture|illustration|visual|photo)
    | \s+(?:into|in)\s+(?:an?\s+)?(?:short\s+)?(?:report|brief|summary|digest)
    """,
    re.IGNORECASE | re.VERBOSE,
)
_NEWSY = re.compile(r"\b(?:news|updates|developments|trends|headlines)\b", re.IGNORECASE)
_TIMEFRAMES = (
    (
        re.compile(
            rf"\b(?:weekly|(?:every|each|this)\s+week|every\s+(?:{_DAYS})|on\s+(?:{_DAYS})s)\b",
            re.IGNORECASE,
        ),
        "this week",
        "this week's",
    ),
    (
        re.compile(
            rf"\b(?:daily|today|every\s+(?:day|weekday|{_PARTS_OF_DAY})|each\s+day)\b",
            re.IGNORECASE,
        ),
        "today",
        "today's",
    ),
    (
        re.compile(r"\b(?:monthly|(?:every|each|this)\s+month)\b", re.IGNORECASE),
        "this month",
        "this month's",
    ),
)

# How a post reads for each platform: (a …, the …).
_PLATFORMS = {
    "linkedin": ("a LinkedIn post", "the LinkedIn post"),
    "x": ("a post for X", "the post for X"),
    "newsletter": ("a newsletter", "the newsletter"),
    "blog": ("a blog post", "the blog post"),
}
_MAX_URLS = 5
_PAGES = ("the page", "the pages")
_TOPIC_CHARS = 120


@dataclass(frozen=True)
class _Topic:
    text: str
    """As the goal says it ("our competitors Acme and Globex"): for descriptions."""
    preposition: str

    @property
    def about(self) -> str:
        """ "on our competitors", or "from the page" when the goal names pages, not a subject."""
        return f"from {self.text}" if self.text in _PAGES else f"on {self.text}"


def draft_offline_plan(goal: str) -> Plan:
    """The offline model's plan for ``goal``: the same goal always gives the same plan."""
    goal = " ".join(goal.split())
    urls = _urls(goal)
    # Keywords are looked for outside URLs: "example.com/blog/launch" asks for no blog post.
    plain = " ".join(_URL.sub(" ", goal).split())
    topic = _topic(goal, urls)
    steps: list[PlannedStep] = []

    def add(
        tool: ToolName, description: str, tool_input: dict[str, Any], approval: str | None = None
    ) -> None:
        steps.append(
            PlannedStep(
                step_index=len(steps),
                description=description,
                tool_name=tool,
                tool_input=tool_input,
                requires_approval=approval is not None,
                approval_prompt=approval,
            )
        )

    saves = _SAVE.match(_LEAD.sub("", plain)) is not None
    if saves:
        key, value = _memory_note(goal)
        add(
            "memory",
            f"Save the note “{key}” in the team's memory",
            {"action": "save", "key": key, "value": value},
        )
    elif _MEMORY.search(plain):
        add(
            "memory",
            "Read the team's brand voice and notes from memory",
            {"action": "view"},
        )

    for url in urls:
        add("web_extract", f"Read the page at {_display_url(url)}", {"url": url})

    is_post = _POST.search(plain) is not None
    report = _REPORT.search(plain)
    report_kind = report.group("kind").lower().rstrip("s") if report else None
    if report_kind is None and not is_post and _SUMMARY.search(plain):
        report_kind = "summary"
    # A report is a research summary: with nothing to read, it researches its topic first.
    # With a URL, "monitor" or "check" is about that page, not a search.
    research = _RESEARCH if not urls else _RESEARCH_BEYOND_PAGES
    if research.search(plain) or (report_kind and not urls and not saves):
        period = _timeframe(plain)
        add(
            "web_search",
            f"Search the web for {_search_phrase(topic, period)}",
            {"query": _query(goal, topic, period)},
        )
    researched = any(step.tool_name in ("web_search", "web_extract") for step in steps)
    source = (
        "the research"
        if any(step.tool_name == "web_search" for step in steps)
        else ("the pages" if len(urls) > 1 else "the page")
    )

    if report_kind:
        add(
            "generate_report",
            f"Write {_article(report_kind)} {report_kind} {topic.about}",
            {"topic": topic.text},
        )

    if is_post:
        platform = _platform(plain)
        a_post, the_post = _PLATFORMS[platform]
        basis = f"from {source}" if researched else f"about {topic.text}"
        add(
            "generate_outline",
            f"Outline {a_post} {basis}",
            {"topic": topic.text, "platform": platform},
        )
        add(
            "format_post",
            f"Write {the_post} for approval",
            {"platform": platform},
            approval=f"Check that {the_post} is accurate, on brand and ready to publish.",
        )

    if _IMAGE.search(plain):
        if is_post:
            description = f"Create an image to go with {_PLATFORMS[_platform(plain)][1]}"
        else:
            description = f"Create an image {_image_preposition(topic)} {topic.text}"
        add(
            "generate_image",
            description,
            {"prompt": _image_prompt(topic)},
            approval="Check that the image fits the message and the brand before it is used.",
        )

    produced = {"generate_report", "format_post", "generate_image"}
    if not saves and not any(step.tool_name in produced for step in steps):
        if steps:
            add(
                "llm_response",
                "Summarise the findings for the team",
                {"instruction": f"Summarise the findings {topic.about} for the team."},
            )
        elif _QUESTION.search(goal):
            add(
                "llm_response",
                f"Answer the question “{_clip(goal, 200)}”",
                {"instruction": goal},
            )
        else:
            request = _LEAD.sub("", goal) or goal or "respond to the request"
            add("llm_response", _clip(request[0].upper() + request[1:], 200), {"instruction": goal})

    return Plan(title=offline_title(goal), steps=steps)


def offline_title(goal: str) -> str:
    """A short title from the goal: its first sentence without politeness or schedule words."""
    text = _URL.sub(lambda match: _display_url(match.group()), " ".join(goal.split()))
    text = re.split(r"(?<=[.!?])\s", text, maxsplit=1)[0]
    text = _SCHEDULE.sub("", _LEAD.sub("", text))
    text = " ".join(text.split()).strip(" ,;:-–—.!?")
    for trim in _TITLE_TRIMS:
        if len(text) <= MAX_TITLE_LENGTH:
            break
        text = trim.sub("", text).strip(" ,;:-–—.!?")
    if not text:
        return "Workflow"
    text = text[0].upper() + text[1:]
    if len(text) <= MAX_TITLE_LENGTH:
        return text
    title = shorten_title(text)
    # "… a weekly post about" reads as cut off: end the cut on a word that carries meaning.
    return _DANGLING_END.sub("", title).rstrip(" ,;:-–—.!?") or title


_DANGLING_END = re.compile(
    r"(?:\s+(?:a|an|and|at|by|for|from|in|into|of|on|or|the|to|with|about|over|via))+$",
    re.IGNORECASE,
)
# Dropped in this order from a title that is too long, before it is cut at a word.
_TITLE_TRIMS = (
    re.compile(r"^(?:use|using)\s+(?:our|the|my)\s+(?:[\w-]+\s+){1,3}?to\s+", re.IGNORECASE),
    re.compile(
        r"\s+(?:with|plus)\s+(?:an?\s+)?(?:[\w-]+\s+)?(?:image|picture|illustration|visual|photo)s?",
        re.IGNORECASE,
    ),
    re.compile(
        r",?\s+(?:and|then)\s+(?:then\s+)?(?:add|send|tell|give|share|email|notify)\b.*$",
        re.IGNORECASE,
    ),
)


def _urls(goal: str) -> list[str]:
    found: list[str] = []
    for match in _URL.finditer(goal):
        url = match.group().rstrip(".,;:!?)]}")
        if url not in found:
            found.append(url)
    return found[:_MAX_URLS]


def _display_url(url: str) -> str:
    parts = urlsplit(url.rstrip(".,;:!?)]}"))
    shown = (parts.netloc + parts.path).rstrip("/")
    return _clip(shown, 60) if shown else url


def _topic(goal: str, urls: list[str]) -> _Topic:
    text = _URL.sub(_PAGES[len(urls) > 1], goal)
    text = _SCHEDULE.sub("", text)
    text = " ".join(text.split())
    candidates = [("about", match.end()) for match in _STRONG_TOPIC.finditer(text)]
    candidates += [
        (match.group("prep").lower(), match.end())
        for match in _WEAK_TOPIC.finditer(text)
        if not _NOT_A_TOPIC.match(text[match.end() :])
    ]
    for preposition, start in candidates:
        phrase = _cut_topic(text[start:])
        if phrase:
            return _Topic(phrase, preposition)
    # No "about …": the object of the request ("Research electric vehicle sales in Europe").
    return _Topic(_cut_topic(_LEAD_VERBS.sub("", _LEAD.sub("", text))) or "the goal", "about")


def _cut_topic(text: str) -> str:
    phrase = _TOPIC_END.split(text, maxsplit=1)[0]
    phrase = re.sub(r"^(?:the\s+)?(?:latest|recent|current)\s+(?=news\b)", "", phrase, flags=re.I)
    phrase = re.sub(r"\b(?:weekly|daily|monthly)\s+", "", phrase, flags=re.IGNORECASE)
    return _clip(phrase.strip(" ,;:-–—.!?\"'"), _TOPIC_CHARS)


def _timeframe(goal: str) -> tuple[str, str] | None:
    for pattern, period, possessive in _TIMEFRAMES:
        if pattern.search(goal):
            return period, possessive
    return None


def _search_phrase(topic: _Topic, period: tuple[str, str] | None) -> str:
    subject = topic.text
    newsy = _NEWSY.search(subject) is not None
    if period is not None:
        return f"{period[1]} {subject}" if newsy else f"{period[1]} news on {subject}"
    if re.match(r"(?:the\s+)?(?:latest|recent|current)\b", subject, re.IGNORECASE):
        return subject
    return f"the latest {subject}" if newsy else f"the latest on {subject}"


def _query(goal: str, topic: _Topic, period: tuple[str, str] | None) -> str:
    query = _DETERMINERS.sub("", topic.text)
    if re.search(r"\bnews\b", goal, re.IGNORECASE) and not _NEWSY.search(query):
        query += " news"
    if period is not None:
        query += f" {period[0]}"
    return _clip(query, 200)


def _platform(goal: str) -> str:
    lowered = goal.lower()
    if "linkedin" in lowered:
        return "linkedin"
    if _X.search(goal):
        return "x"
    if "newsletter" in lowered:
        return "newsletter"
    if re.search(r"\bblog", lowered):
        return "blog"
    return "linkedin"


def _image_preposition(topic: _Topic) -> str:
    return topic.preposition if topic.preposition in ("of", "for") else "about"


def _image_prompt(topic: _Topic) -> str:
    return f"A clean, modern illustration {_image_preposition(topic)} {topic.text}, with no text"


def _memory_note(goal: str) -> tuple[str, str]:
    """The key and value of a "remember …" goal: "our brand voice is friendly" → brand-voice."""
    value = _SAVE.sub("", _LEAD.sub("", goal), count=1).strip() or goal
    subject = re.split(r"\s+(?:is|are|was|were|should|must|means|=)\s+", value, maxsplit=1)[0]
    words = re.findall(r"[a-z0-9]+", _DETERMINERS.sub("", subject).lower())[:4]
    key = "-".join(words) or "note"
    # ``core`` is edited by admins only (docs/api.md, Tools): a run never writes it.
    if key == "core":
        key = "core-note"
    return key, value[0].upper() + value[1:]


def _article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


def _clip(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    head = text[: limit - 1]
    return (head.rsplit(" ", 1)[0] if " " in head else head) + "…"


"""The output tools the offline model can call, with the handler that writes each call."""


HANDLERS: dict[str, Handler] = {PLAN_TOOL_NAME: plan_handler}
