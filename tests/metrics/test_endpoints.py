"""``GET /metrics``: who may read it, what it holds, and its series moving during a real run.

The run is the real application's (the inline engine in the background) over the OpenAI wire
protocol, against the local fake server, so token counts are the provider's own.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from pydantic_ai.models import override_allow_model_requests

from tests.support.accounts import signup
from tests.support.openai_fake import FakeOpenAI, tool_call
from tests.support.workflows import activate, create_workflow, wait_for_run

METRICS_TOKEN = "metrics-token-for-the-tests-0123"
BEARER = {"Authorization": f"Bearer {METRICS_TOKEN}"}

# Every family /metrics serves (counters without their _total suffix, as the parser names them).
FAMILIES = {
    "signoff_runs_started": "counter",
    "signoff_runs_completed": "counter",
    "signoff_runs_failed": "counter",
    "signoff_steps_awaiting_approval": "gauge",
    "signoff_steps_ready": "gauge",
    "signoff_steps_ready_oldest_seconds": "gauge",
    "signoff_mail_outbox_backlog": "gauge",
    "signoff_mail_failures": "counter",
    "signoff_mail_given_up": "counter",
    "signoff_schedule_fires": "counter",
    "signoff_schedule_misses": "counter",
    "signoff_step_duration_seconds": "histogram",
    "signoff_model_latency_seconds": "histogram",
    "signoff_llm_tokens": "counter",
    "signoff_approval_decision_seconds": "histogram",
}

PLAN = {
    "title": "Launch post",
    "steps": [
        {
            "stepIndex": 0,
            "description": "Search for launch coverage",
            "toolName": "web_search",
            "toolInput": {"query": "spring launch"},
            "requiresApproval": False,
            "approvalPrompt": None,
        },
        {
            "stepIndex": 1,
            "description": "Outline the post",
            "toolName": "generate_outline",
            "toolInput": {"topic": "launch"},
            "requiresApproval": False,
            "approvalPrompt": None,
        },
        {
            "stepIndex": 2,
            "description": "Write the LinkedIn post",
            "toolName": "format_post",
            "toolInput": {"platform": "linkedin"},
            "requiresApproval": True,
            "approvalPrompt": "Check the tone.",
        },
    ],
}
STEP_REPLIES = [
    tool_call("web_search", {"query": "spring launch"}, prompt_tokens=100, completion_tokens=10),
    tool_call(
        "generate_outline",
        {"title": "Spring launch", "sections": [{"heading": "News", "points": ["It shipped"]}]},
        prompt_tokens=200,
        completion_tokens=20,
    ),
    tool_call(
        "format_post",
        {"platform": "linkedin", "text": "We launched.", "hashtags": ["launch"]},
        prompt_tokens=300,
        completion_tokens=30,
    ),
]


@pytest.fixture
def settings_overrides(fake_openai: FakeOpenAI) -> dict[str, Any]:
    return {
        "llm_model": "fake-model",
        "llm_base_url": fake_openai.base_url,
        "llm_api_key": "sk-fake-key-0123456789",
        "metrics_token": METRICS_TOKEN,
    }


@pytest.fixture(autouse=True)
def _model_requests_allowed() -> Iterator[None]:
    with override_allow_model_requests(True):
        yield


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def scrape(client: httpx.AsyncClient) -> tuple[dict[str, str], Samples]:
    """The families (name → type) and every sample (name and labels → value)."""
    response = await client.get("/metrics", headers=BEARER)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    families: dict[str, str] = {}
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        families[family.name] = family.type
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return families, samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def moved(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


async def test_every_family_is_served_with_its_type(client: httpx.AsyncClient) -> None:
    families, samples = await scrape(client)
    assert {name: families.get(name) for name in FAMILIES} == FAMILIES
    # Labelled series exist at zero before anything happened: every trigger, every tool.
    for trigger in ("manual", "schedule", "approval"):
        assert ("signoff_runs_started_total", (("trigger", trigger),)) in samples
    for tool in ("web_search", "format_post", "generate_image"):
        assert ("signoff_step_duration_seconds_count", (("tool", tool),)) in samples
    assert ("signoff_llm_tokens_total", (("direction", "input"), ("model", "fake-model"))) in (
        samples
    )


async def test_runs_and_steps_move_while_a_run_goes_on(
    client: httpx.AsyncClient, fake_openai: FakeOpenAI
) -> None:
    account = await signup(client)
    fake_openai.script(tool_call("submit_plan", PLAN, prompt_tokens=400, completion_tokens=40))
    workflow_id = (await create_workflow(client, account))["workflowId"]
    _, before = await scrape(client)

    fake_openai.script(*STEP_REPLIES)
    run_id = await activate(client, account, workflow_id)
    await wait_for_run(client, account, workflow_id, run_id, "awaiting_approval")
    _, paused = await scrape(client)

    # Mid-run: started (by the plan's approval), not finished; three steps executed, each one
    # model request; the post waits for a person.
    assert moved(before, paused, "signoff_runs_started_total", trigger="approval") == 1
    assert moved(before, paused, "signoff_runs_completed_total", trigger="approval") == 0
    for tool in ("web_search", "generate_outline", "format_post"):
        assert moved(before, paused, "signoff_step_duration_seconds_count", tool=tool) == 1
        assert moved(before, paused, "signoff_step_duration_seconds_sum", tool=tool) > 0
        assert moved(before, paused, "signoff_model_latency_seconds_count", tool=tool) == 1
    tokens = {"model": "fake-model"}
    assert moved(before, paused, "signoff_llm_tokens_total", direction="input", **tokens) == 600
    assert moved(before, paused, "signoff_llm_tokens_total", direction="output", **tokens) == 60
    assert moved(before, paused, "signoff_steps_awaiting_approval") == 1

    decided = await client.post(
        f"/api/workflows/{workflow_id}/runs/{run_id}/decision",
        json={"action": "approve"},
        headers=account.headers,
    )
    assert decided.status_code == 200, decided.text
    await wait_for_run(client, account, workflow_id, run_id, "completed")
    _, done = await scrape(client)

    assert moved(paused, done, "signoff_runs_completed_total", trigger="approval") == 1
    assert moved(paused, done, "signoff_steps_awaiting_approval") == -1
    assert moved(paused, done, "signoff_approval_decision_seconds_count", decision="approve") == 1


async def test_the_planner_request_is_measured_too(
    client: httpx.AsyncClient, fake_openai: FakeOpenAI
) -> None:
    account = await signup(client)
    _, before = await scrape(client)
    fake_openai.script(tool_call("submit_plan", PLAN, prompt_tokens=400, completion_tokens=40))
    await create_workflow(client, account)
    _, after = await scrape(client)
    assert moved(before, after, "signoff_model_latency_seconds_count", tool="submit_plan") == 1
    tokens = {"model": "fake-model"}
    assert moved(before, after, "signoff_llm_tokens_total", direction="input", **tokens) == 400


async def test_metrics_need_the_bearer_token(client: httpx.AsyncClient) -> None:
    for headers in (
        {},
        {"Authorization": "Bearer wrong-token-wrong-token"},
        {"Authorization": f"Basic {METRICS_TOKEN}"},
        {"Authorization": METRICS_TOKEN},
    ):
        response = await client.get("/metrics", headers=headers)
        assert response.status_code == 401, headers
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert response.json()["code"] == "unauthorized"
        assert "signoff_" not in response.text


async def test_metrics_are_left_out_of_the_openapi_document(client: httpx.AsyncClient) -> None:
    # Like /healthz and /readyz: for the operator's Prometheus, not for API clients (the
    # schemathesis and contract tests follow the document, so they do not call it either).
    paths = (await client.get("/openapi.json")).json()["paths"]
    assert "/metrics" not in paths
    assert "/healthz" not in paths
