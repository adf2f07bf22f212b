"""`signoff serve` as operators run it, its whole output read back: a full run (plan → approve
by link → run → a step approved by link) with ``SIGNOFF_LOG_LEVEL=DEBUG`` and
``SIGNOFF_LOG_FORMAT=json``, the model behind the OpenAI fake and the mail behind an SMTP
server that wants a login, ``/metrics`` scraped while the run goes on.

Every line of the process's output must be JSON; no secret (the model's API key, the SMTP
password, the token secret, the metrics token, an image key), no session or CSRF token and no
email link token may appear anywhere in it, uvicorn's access log included; and every line about
a step names its workflow, run, step and attempt.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from signoff.auth.csrf import csrf_token
from tests.metrics.test_endpoints import PLAN, STEP_REPLIES, moved
from tests.support.mailbox import links_in, mail_to
from tests.support.openai_fake import FakeOpenAI, tool_call
from tests.support.processes import processes
from tests.support.settings import TOKEN_SECRET, make_settings
from tests.support.smtp import FakeSmtpServer, serving_smtp
from tests.support.waiting import wait_until

pytestmark = pytest.mark.processes

API_KEY = "sk-fake-api-key-abcdef0123456789"
IMAGE_KEY = "img-fake-key-abcdef0123456789"
SMTP_USER, SMTP_PASSWORD = "mailer", "smtp-pass-0123456789"
METRICS_TOKEN = "metrics-token-abcdef0123456789"
OWNER = "owner@example.com"
CONTEXT = ("workflowId", "runId", "stepIndex", "attempt")


@pytest.fixture
def smtp_with_login() -> Iterator[FakeSmtpServer]:
    with serving_smtp(FakeSmtpServer(login=(SMTP_USER, SMTP_PASSWORD))) as server:
        yield server


async def _scrape(
    client: httpx.AsyncClient,
) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:

    response = await client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert response.status_code == 200, response.text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


async def _run_status(client: httpx.AsyncClient, headers: dict[str, str], path: str) -> str:
    response = await client.get(path, headers=headers)
    assert response.status_code == 200, response.text
    return str(response.json()["status"])


async def test_a_full_run_logs_json_with_run_context_and_no_secret(
    tmp_path: Path, fake_openai: FakeOpenAI, smtp_with_login: FakeSmtpServer
) -> None:
    port = smtp_with_login.url.rsplit(":", 1)[1]
    secrets: dict[str, str] = {
        "API key": API_KEY,
        "image key": IMAGE_KEY,
        "SMTP password": SMTP_PASSWORD,
        "metrics token": METRICS_TOKEN,
        "token secret": TOKEN_SECRET,
    }
    fake_openai.script(tool_call("submit_plan", PLAN), *STEP_REPLIES)
    with processes(tmp_path) as started:
        serve, base = started.serve(
            log_level="DEBUG",
            log_format="json",
            llm_model="fake-model",
            llm_base_url=fake_openai.base_url,
            llm_api_key=API_KEY,
            image_api_key=IMAGE_KEY,
            smtp_url=f"smtp://{SMTP_USER}:{SMTP_PASSWORD}@127.0.0.1:{port}",
            metrics_token=METRICS_TOKEN,
        )
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            signup = await client.post(
                "/api/auth/signup", json={"email": OWNER, "password": "long enough pass"}
            )
            assert signup.status_code == 201, signup.text
            session = signup.json()["token"]
            secrets["session token"] = session
            auth = {"Authorization": f"Bearer {session}"}

            # A cookie-authenticated form, with its CSRF token.
            csrf = csrf_token(make_settings(tmp_path), session)
            secrets["CSRF token"] = csrf
            client.cookies.set("signoff_session", session)
            saved = await client.post(
                "/dashboard/memory/core", data={"value": "We write plainly.", "csrf_token": csrf}
            )
            client.cookies.clear()
            assert saved.status_code == 303, saved.text

            created = await client.post(
                "/api/workflows", json={"goal": "A launch post"}, headers=auth
            )
            assert created.status_code == 201, created.text
            workflow_id = created.json()["workflowId"]
            before = await _scrape(client)

            plan_mail = await mail_to(smtp_with_login, OWNER, "workflow plan", timeout=30)
            [approve_plan] = [link for link in links_in(plan_mail) if "/approve?token=" in link]
            secrets["plan link token"] = approve_plan.split("token=")[1].split("&")[0]
            approved = await client.post(approve_plan)  # a POST decides, whatever the client
            assert approved.status_code == 303, approved.text

            runs = (await client.get(f"/api/workflows/{workflow_id}/runs", headers=auth)).json()
            run_path = f"/api/workflows/{workflow_id}/runs/{runs['runs'][0]['id']}"

            async def paused() -> bool:
                return await _run_status(client, auth, run_path) == "awaiting_approval"

            await wait_until(paused, "the run to wait at its post", timeout=30, watch=(serve,))
            during = await _scrape(client)
            # Served in prometheus_client's multiprocess mode, from the process's own directory.
            metrics_dir = tmp_path / ".signoff" / "metrics" / str(serve.pid)
            assert list(metrics_dir.glob("histogram_*.db"))
            assert moved(before, during, "signoff_runs_started_total", trigger="approval") == 1
            assert moved(before, during, "signoff_steps_awaiting_approval") == 1
            for tool in ("web_search", "generate_outline", "format_post"):
                assert moved(before, during, "signoff_step_duration_seconds_count", tool=tool) == 1

            step_mail = await mail_to(smtp_with_login, OWNER, "Approval needed", timeout=30)
            [approve_step] = [link for link in links_in(step_mail) if "action=approve" in link]
            secrets["step link token"] = approve_step.split("token=")[1].split("&")[0]
            decided = await client.post(approve_step)
            assert decided.status_code == 303, decided.text

            async def completed() -> bool:
                return await _run_status(client, auth, run_path) == "completed"

            await wait_until(completed, "the run to complete", timeout=30, watch=(serve,))
            after = await _scrape(client)
            assert moved(during, after, "signoff_runs_completed_total", trigger="approval") == 1
            assert (
                moved(during, after, "signoff_approval_decision_seconds_count", decision="approve")
                == 1
            )
        serve.stop()
    output = serve.output()

    # Nothing secret, anywhere.
    leaked = [name for name, secret in secrets.items() if secret in output]
    assert leaked == [], f"{leaked} in the log:\n{output[-3000:]}"

    # Every line is a JSON object.
    entries = []
    for line in output.splitlines():
        if line.strip():
            entries.append(json.loads(line))
    assert all({"time", "level", "logger", "message"} <= entry.keys() for entry in entries)

    # uvicorn's access log is in it, the links' tokens redacted.
    access = [e["message"] for e in entries if e["logger"] == "uvicorn.access"]
    assert any("/api/workflows/resume?token=[redacted]&action=approve" in m for m in access), access
    assert any(f"/api/workflows/{workflow_id}/approve?token=[redacted]" in m for m in access)

    # Lines about a step name it whole; the engine's, the model client's among them.
    about_runs = [e for e in entries if "runId" in e]
    assert all(all(key in e for key in CONTEXT) for e in about_runs), about_runs
    executor = [e for e in entries if e["logger"] == "signoff.runs.executor"]
    assert executor
    assert all(all(key in e for key in CONTEXT) for e in executor)
    assert {e["stepIndex"] for e in executor} == {0, 1, 2}
    model_calls = [e for e in about_runs if e["logger"].startswith(("httpx", "openai"))]
    assert model_calls, "the model client's lines during steps carry the run context"
    # The plan's line names its workflow; the decision's names the step.
    [drafted] = [e for e in entries if e["message"].startswith("plan drafted")]
    assert drafted["workflowId"] == workflow_id
    [decision] = [e for e in entries if "decided: approve" in e["message"]]
    assert (decision["stepIndex"], decision["attempt"]) == (2, 1)
