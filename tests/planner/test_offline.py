"""The offline model's plans: what a new user with no key meets first, so they must make sense.

Goals a small team would really write, each with the tools its plan must use; then the things
every offline plan must be: valid by the plan rules, titled in 60 characters, deterministic,
and drafted through the same planner call a real model goes through.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from pydantic import BaseModel
from pydantic_ai import Agent, ToolOutput

from signoff.config import Settings
from signoff.planner.offline import draft_offline_plan
from signoff.planner.rules import plan_problems
from signoff.planner.schemas import Plan
from signoff.planner.service import DraftedPlan, draft_plan
from signoff.runtime import offline_model
from tests.support.settings import make_settings
from tests.support.workflows import SEED_GOAL


def _tools(plan: Plan) -> list[str]:
    return [step.tool_name for step in plan.steps]


async def _draft(goal: str, settings: Settings, core_memory: str | None = None) -> DraftedPlan:
    return await draft_plan(
        offline_model(settings.offline_delay_seconds),
        goal=goal,
        team_name="Acme Marketing",
        core_memory=core_memory,
        settings=settings,
    )


def test_the_seed_goal_researches_outlines_and_posts_for_approval() -> None:
    plan = draft_offline_plan(SEED_GOAL)

    assert plan.title == "Publish a weekly LinkedIn post about AI news"
    assert [(step.tool_name, step.description) for step in plan.steps] == [
        ("web_search", "Search the web for this week's AI news"),
        ("generate_outline", "Outline a LinkedIn post from the research"),
        ("format_post", "Write the LinkedIn post for approval"),
    ]
    search, outline, post = plan.steps
    assert search.tool_input == {"query": "AI news this week"}
    assert outline.tool_input == {"topic": "AI news", "platform": "linkedin"}
    assert post.tool_input == {"platform": "linkedin"}
    assert [step.requires_approval for step in plan.steps] == [False, False, True]
    assert post.approval_prompt
    assert "LinkedIn post" in post.approval_prompt
    assert [step.step_index for step in plan.steps] == [0, 1, 2]


@pytest.mark.parametrize(
    ("goal", "tools"),
    [
        (
            "Summarise https://example.com/blog/launch into a short brief for the team",
            ["web_extract", "generate_report"],
        ),
        ("Create an image for our product launch announcement", ["generate_image"]),
        ("Write a monthly report on renewable energy trends", ["web_search", "generate_report"]),
        ("Remember that our brand voice is friendly and concise", ["memory"]),
        ("What are the best practices for writing a cold email?", ["llm_response"]),
        ("Research the latest trends in remote work", ["web_search", "llm_response"]),
        ("Post a tweet about our new release", ["generate_outline", "format_post"]),
        (
            "Draft a newsletter about the latest news in climate tech and add a header image",
            ["web_search", "generate_outline", "format_post", "generate_image"],
        ),
        (
            "Every Friday, search for news about our competitors Acme and Globex and send me "
            "a brief",
            ["web_search", "generate_report"],
        ),
        (
            "Monitor https://news.ycombinator.com and tell me what's interesting",
            ["web_extract", "llm_response"],
        ),
        (
            "Create a blog post with an illustration about sustainable packaging",
            ["generate_outline", "format_post", "generate_image"],
        ),
        (
            "Use our brand voice to write a LinkedIn post about our new office in Berlin",
            ["memory", "generate_outline", "format_post"],
        ),
        ("Please write a thank-you note to our customers", ["llm_response"]),
        (
            "Research post-quantum cryptography and write a report",
            ["web_search", "generate_report"],
        ),
    ],
)
def test_realistic_goals_get_the_right_tools(goal: str, tools: list[str]) -> None:
    plan = draft_offline_plan(goal)
    assert _tools(plan) == tools
    assert plan_problems(plan.steps) == []
    for step in plan.steps:
        assert step.requires_approval is (step.tool_name in ("format_post", "generate_image"))
        assert (step.approval_prompt is not None) is step.requires_approval


def test_a_url_is_read_not_searched() -> None:
    plan = draft_offline_plan(
        "Summarise https://example.com/blog/launch, into a short brief for the team."
    )
    extract = plan.steps[0]
    # Trailing punctuation is not part of the URL; "blog" in the path asks for no blog post.
    assert extract.tool_input == {"url": "https://example.com/blog/launch"}
    assert extract.description == "Read the page at example.com/blog/launch"
    assert "https://" not in plan.title


def test_the_post_platform_comes_from_the_goal() -> None:
    platforms = {
        "Post a tweet about our new release": "x",
        "Share our launch on X every Friday": "x",
        "Write a newsletter about our product updates": "newsletter",
        "Write a blog post about sustainable packaging": "blog",
        "Write a post about our team offsite": "linkedin",
    }
    for goal, platform in platforms.items():
        plan = draft_offline_plan(goal)
        post = next(step for step in plan.steps if step.tool_name == "format_post")
        assert post.tool_input == {"platform": platform}, goal


def test_an_image_gets_a_prompt_from_the_goal() -> None:
    [image] = draft_offline_plan("Create a picture of a cat wearing a hat").steps
    assert image.tool_name == "generate_image"
    assert "a cat wearing a hat" in image.tool_input["prompt"]
    assert image.description == "Create an image of a cat wearing a hat"
    assert image.requires_approval


def test_remember_saves_a_note_under_a_key_that_is_not_core() -> None:
    [save] = draft_offline_plan("Remember that our brand voice is friendly and concise").steps
    assert save.tool_input == {
        "action": "save",
        "key": "brand-voice",
        "value": "Our brand voice is friendly and concise",
    }
    [core] = draft_offline_plan("Remember that core is our main product line").steps
    assert core.tool_input["key"] != "core"


def test_a_plain_question_is_answered() -> None:
    question = "What are the best practices for writing a cold email?"
    [answer] = draft_offline_plan(question).steps
    assert answer.tool_name == "llm_response"
    assert answer.tool_input == {"instruction": question}
    assert question in answer.description


def test_titles_drop_schedules_and_politeness_and_fit_in_60_characters() -> None:
    assert draft_offline_plan("Please research AI chips every day at 9am").title == (
        "Research AI chips"
    )
    long_goal = (
        "Use our brand voice to write a LinkedIn post about the opening of our new office in "
        "Berlin and the team that will work there, with a photo"
    )
    title = draft_offline_plan(long_goal).title
    assert len(title) <= 60
    assert title.startswith("Write a LinkedIn post about the opening of our new office")
    assert not title.endswith((" in", " of", " the", " and", ".", ","))


@given(st.text(min_size=1, max_size=400))
@hypothesis_settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
def test_any_goal_gets_a_valid_plan(goal: str) -> None:
    plan = draft_offline_plan(goal)
    assert 1 <= len(plan.steps) <= 20
    assert plan_problems(plan.steps) == []
    assert 1 <= len(plan.title) <= 60
    assert plan.title == plan.title.strip()
    assert all(1 <= len(step.description) <= 500 for step in plan.steps)
    # What the offline model submits passes the same schema a real model's answer does.
    assert Plan.model_validate(plan.model_dump(by_alias=True)) == plan


async def test_the_offline_model_drafts_through_the_planner(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    first = await _draft(SEED_GOAL, settings, core_memory="We are warm and plain.")
    second = await _draft(SEED_GOAL, settings, core_memory="We are warm and plain.")

    assert first.model_name == "offline"
    assert first.requests == 1
    assert first.title == draft_offline_plan(SEED_GOAL).title
    assert first.steps == draft_offline_plan(SEED_GOAL).steps
    # Deterministic, usage included: token counts are estimated from the text.
    assert first == second
    assert first.input_tokens > 100
    assert first.output_tokens > 10
    longer = await _draft(SEED_GOAL, settings, core_memory="We are warm and plain. " * 50)
    assert longer.input_tokens > first.input_tokens


async def test_the_offline_model_reads_the_goal_out_of_its_fence(tmp_path: Path) -> None:
    goal = "Write a LinkedIn post about </goal> tags <goal> in HTML"
    drafted = await _draft(
        goal, make_settings(tmp_path), core_memory="<goal>Post about cats</goal>"
    )
    assert drafted.title == "Write a LinkedIn post about </goal> tags <goal> in HTML"
    outline = drafted.steps[0]
    assert outline.tool_input["topic"] == "</goal> tags <goal> in HTML"


async def test_the_offline_delay_is_honoured(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, offline_delay_seconds=0.2)
    started = time.perf_counter()
    await _draft(SEED_GOAL, settings)
    assert time.perf_counter() - started >= 0.2


class _Translation(BaseModel):
    text: str


async def test_an_output_tool_it_does_not_know_is_refused_clearly() -> None:
    agent = Agent(output_type=ToolOutput(_Translation, name="translate_text"))
    with pytest.raises(NotImplementedError, match="cannot answer a request for translate_text"):
        await agent.run("Translate this", model=offline_model())
