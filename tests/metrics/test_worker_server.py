"""``signoff worker``'s own HTTP server (``SIGNOFF_WORKER_PORT``): its probe and who may read
its metrics, over HTTP in this process; then a real worker process executing a run's steps,
whose series show on its own ``/metrics`` (they are not the API's to show).
"""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from asgi_lifespan import LifespanManager
from prometheus_client.parser import text_string_to_metric_families
from pydantic_ai.models import override_allow_model_requests

from signoff.app import create_app
from signoff.config import Settings
from signoff.metrics.worker_server import WorkerProbe
from tests.metrics.test_endpoints import PLAN, STEP_REPLIES, Samples, moved, value
from tests.support.accounts import signup
from tests.support.openai_fake import FakeOpenAI, tool_call
from tests.support.ports import free_port
from tests.support.postgres import fresh_postgres_database
from tests.support.processes import processes, wait_for_workers
from tests.support.settings import make_settings
from tests.support.workflows import activate, create_workflow, wait_for_run

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "worker-metrics-token-0123456789"
BEARER = {"Authorization": f"Bearer {TOKEN}"}
TOOLS = ("web_search", "generate_outline", "format_post")


@pytest.fixture
def probe_settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path, f"sqlite+aiosqlite:///{tmp_path}/unused.db")


@pytest.fixture
def probe_settings_with_token(tmp_path: Path) -> Settings:
    return make_settings(tmp_path, f"sqlite+aiosqlite:///{tmp_path}/unused.db", metrics_token=TOKEN)


@pytest.fixture(autouse=True)
def _model_requests_allowed() -> Iterator[None]:
    with override_allow_model_requests(True):
        yield


@pytest.fixture
def start_probe() -> Iterator[Any]:
    started: list[WorkerProbe] = []

    def start(settings: Settings, **options: float) -> str:
        probe = WorkerProbe(settings, **options)
        probe.start()
        started.append(probe)
        return f"http://127.0.0.1:{probe.port}"

    yield start
    for probe in started:
        probe.stop()


async def test_without_a_token_only_the_probe_answers(
    probe_settings: Settings, start_probe: Any
) -> None:
    base = start_probe(probe_settings)
    async with httpx.AsyncClient(base_url=base) as http:
        alive = await http.get("/healthz")
        assert (alive.status_code, alive.json()) == (200, {"status": "ok"})
        for path in ("/metrics", "/nothing-here"):
            off = await http.get(path, headers=BEARER)
            assert off.status_code == 404
            assert off.json() == {"error": "Not found.", "code": "not_found"}
        posted = await http.post("/healthz")
        assert (posted.status_code, posted.headers["allow"]) == (405, "GET")


async def test_metrics_need_the_bearer_token(
    probe_settings_with_token: Settings, start_probe: Any
) -> None:
    base = start_probe(probe_settings_with_token)
    async with httpx.AsyncClient(base_url=base) as http:
        for headers in ({}, {"Authorization": "Bearer wrong-token-wrong-token"}):
            refused = await http.get("/metrics", headers=headers)
            assert refused.status_code == 401
            assert refused.json()["code"] == "unauthorized"
            assert refused.headers["www-authenticate"] == 'Bearer realm="metrics"'
        served = await http.get("/metrics", headers=BEARER)
    assert served.status_code == 200
    assert served.headers["content-type"].startswith("text/plain")
    assert "signoff_step_duration_seconds" in served.text


async def test_a_stuck_event_loop_fails_the_liveness_probe(
    probe_settings: Settings, start_probe: Any
) -> None:
    probe_options = {"stale_after": 0.3}
    base = start_probe(probe_settings, **probe_options)
    async with httpx.AsyncClient(base_url=base) as http:
        await asyncio.sleep(0.5)  # nothing beat: as if the loop were blocked
        stalled = await http.get("/healthz")
        assert (stalled.status_code, stalled.json()) == (503, {"status": "stalled"})
        # The probe of a real worker: the beat runs on the loop, so a live loop passes.
        probe = WorkerProbe(probe_settings, stale_after=0.3)
        beat = asyncio.create_task(probe.beat())
        probe.start()
        try:
            await asyncio.sleep(0.5)
            alive = await http.get(f"http://127.0.0.1:{probe.port}/healthz")
        finally:
            beat.cancel()
            probe.stop()
    assert alive.status_code == 200


def compose_worker_probe(port: int) -> list[str]:
    """The worker's healthcheck command in compose.yaml, aimed at ``port`` instead of 8001."""
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    worker = compose["services"]["worker"]
    assert worker["environment"]["SIGNOFF_WORKER_PORT"] == "8001"
    kind, *command = worker["healthcheck"]["test"]
    assert kind == "CMD"
    return [part.replace(":8001/", f":{port}/") for part in command]


async def scrape(http: httpx.AsyncClient, url: str) -> Samples:
    response = await http.get(url, headers=BEARER)
    assert response.status_code == 200, response.text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


@pytest.fixture
async def api(tmp_path: Path, database_url: str, fake_openai: FakeOpenAI) -> AsyncIterator[Any]:
    """The API in this process, deferring steps to the job queue (it executes none)."""
    settings = make_settings(
        tmp_path,
        database_url,
        queue="procrastinate",
        llm_model="fake-model",
        llm_base_url=fake_openai.base_url,
        llm_api_key="sk-fake-key-0123456789",
        metrics_token=TOKEN,
    )
    application = create_app(settings)
    async with LifespanManager(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client


@pytest.fixture
def database_url() -> Iterator[str]:
    with fresh_postgres_database("worker_metrics") as url:
        yield url


@pytest.mark.processes
@pytest.mark.timeout(180)
async def test_a_worker_serves_the_series_of_the_steps_it_executed(
    tmp_path: Path, database_url: str, fake_openai: FakeOpenAI, api: httpx.AsyncClient
) -> None:
    port = free_port()
    with processes(tmp_path) as started:
        worker = started.start(
            "worker",
            "worker",
            database_url=database_url,
            queue="procrastinate",
            data_dir=tmp_path / "worker-data",
            llm_model="fake-model",
            llm_base_url=fake_openai.base_url,
            llm_api_key="sk-fake-key-0123456789",
            metrics_token=TOKEN,
            worker_port=port,
        )
        await asyncio.to_thread(wait_for_workers, database_url, 1, (worker,))
        assert f"/healthz and /metrics on 127.0.0.1:{port}" in worker.output()
        # compose.yaml's probe of its workers, at this worker's port.
        probe = compose_worker_probe(port)
        assert (await asyncio.to_thread(subprocess.run, probe, timeout=30)).returncode == 0
        worker_metrics = f"http://127.0.0.1:{port}/metrics"
        async with httpx.AsyncClient() as http:
            before = await scrape(http, worker_metrics)
            api_before = await scrape(api, "/metrics")
            account = await signup(api)
            fake_openai.script(
                tool_call("submit_plan", PLAN, prompt_tokens=400, completion_tokens=40)
            )
            workflow_id = (await create_workflow(api, account))["workflowId"]
            fake_openai.script(*STEP_REPLIES)
            run_id = await activate(api, account, workflow_id)
            await wait_for_run(api, account, workflow_id, run_id, "awaiting_approval", timeout=30)
            after = await scrape(http, worker_metrics)
            api_after = await scrape(api, "/metrics")
            alive = await http.get(f"http://127.0.0.1:{port}/healthz")
    assert alive.json() == {"status": "ok"}
    # The worker executed the three steps: one attempt and one model request each.
    for tool in TOOLS:
        assert moved(before, after, "signoff_step_duration_seconds_count", tool=tool) == 1
        assert moved(before, after, "signoff_model_latency_seconds_count", tool=tool) == 1
    tokens = {"model": "fake-model"}
    assert moved(before, after, "signoff_llm_tokens_total", direction="input", **tokens) == 600
    assert moved(before, after, "signoff_llm_tokens_total", direction="output", **tokens) == 60
    # The plan was the API's request, not the worker's; the steps are not the API's.
    assert value(after, "signoff_model_latency_seconds_count", tool="submit_plan") == 0
    assert (
        moved(api_before, api_after, "signoff_model_latency_seconds_count", tool="submit_plan") == 1
    )
    for tool in TOOLS:
        assert moved(api_before, api_after, "signoff_step_duration_seconds_count", tool=tool) == 0
    # The database's series are the API's to serve, for every process.
    assert moved(api_before, api_after, "signoff_steps_awaiting_approval") == 1
    assert value(after, "signoff_steps_awaiting_approval") == 0
