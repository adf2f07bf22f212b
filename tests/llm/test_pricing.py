"""Estimated costs: the price table, its overrides, and the costs the API and pages show."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from signoff.llm.pricing import estimated_cost_usd, price_of
from tests.support.accounts import HTML, as_browser, signup
from tests.support.settings import make_settings
from tests.support.workflows import paused_run


def test_prices_by_model_name(tmp_path: Path) -> None:
    assert price_of("gpt-4o") == (2.50, 10.00)
    assert price_of("openai:gpt-4o-2024-08-06") == (2.50, 10.00)
    assert price_of("openai:gpt-4o-mini") == (0.15, 0.60)  # the longest name it extends
    assert price_of("gpt-4.1-mini-2025-04-14") == (0.40, 1.60)
    assert price_of("anthropic:claude-sonnet-4-5") == (3.00, 15.00)
    assert price_of("offline") == (0.0, 0.0)
    assert price_of("gpt-4oo") is None  # not a version of gpt-4o
    assert price_of("ollama:llama3.1") is None
    settings = make_settings(tmp_path, llm_prices={"llama3.1": (0.1, 0.2), "gpt-4o": (1, 2)})
    assert estimated_cost_usd(settings, "ollama:llama3.1", 1_000_000, 500_000) == 0.2
    assert estimated_cost_usd(settings, "gpt-4o", 2_000_000, 0) == 2.0
    assert estimated_cost_usd(settings, "mystery", 10, 10) is None
    assert estimated_cost_usd(settings, "gpt-4o-mini", 1_000, 1_000) == 0.0008


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    # The offline model at a price that makes its cost visible: $1 per input and $2 per
    # output token.
    return {"llm_prices": {"offline": (1_000_000.0, 2_000_000.0)}}


async def test_runs_show_their_estimated_cost(client: httpx.AsyncClient) -> None:
    owner = await signup(client)
    run = await paused_run(client, owner)
    assert run["inputTokens"] > 0
    assert run["estimatedCostUsd"] == run["inputTokens"] + 2 * run["outputTokens"]
    for step in run["steps"]:
        assert step["estimatedCostUsd"] == step["inputTokens"] + 2 * step["outputTokens"]
    workflow = await client.get(f"/api/workflows/{run['workflowId']}", headers=owner.headers)
    assert workflow.json()["workflowRuns"][0]["estimatedCostUsd"] == run["estimatedCostUsd"]
    listed = await client.get("/api/workflows", headers=owner.headers)
    assert listed.json()[0]["latestRun"]["estimatedCostUsd"] == run["estimatedCostUsd"]
    as_browser(client, owner)
    page = await client.get(
        f"/dashboard/workflows/{run['workflowId']}/runs/{run['id']}", headers=HTML
    )
    assert f"≈ ${run['estimatedCostUsd']:,.2f}" in page.text
