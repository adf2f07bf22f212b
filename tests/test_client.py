"""A client generated from the OpenAPI document drives the seed flow.

openapi-python-client generates a package from ``/openapi.json`` into a temporary directory;
the test imports it and, through its async functions (over ASGI), signs up, creates a workflow,
activates it, starts, lists, reads and stops runs. Every error answer comes back parsed as the
document's ``ErrorResponse``, its ``code`` an ``ErrorCode`` member.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from signoff.app import create_app
from signoff.config import Settings

PACKAGE = "signoff_generated_client"
BASE_URL = "http://testserver"


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, ModuleType]]:
    workdir = tmp_path_factory.mktemp("client")
    document_app = create_app(
        Settings(_env_file=None, data_dir=workdir / "data", token_secret="x" * 40)  # type: ignore[call-arg]
    )
    (workdir / "openapi.json").write_text(json.dumps(document_app.openapi()))
    (workdir / "config.yaml").write_text(
        f"post_hooks: []\nproject_name_override: {PACKAGE}\npackage_name_override: {PACKAGE}\n"
    )
    generator = Path(sys.executable).with_name("openapi-python-client")
    result = subprocess.run(
        [
            str(generator),
            "generate",
            "--path",
            str(workdir / "openapi.json"),
            "--config",
            str(workdir / "config.yaml"),
            "--meta",
            "none",
            "--output-path",
            str(workdir / "out" / PACKAGE),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # The generator warns about what it could not understand; the document has nothing of it.
    assert "Warning" not in result.stdout + result.stderr, result.stdout + result.stderr
    sys.path.insert(0, str(workdir / "out"))
    try:
        names = [
            "client",
            "models",
            "api.accounts.signup",
            "api.accounts.get_me",
            "api.workflows.create_workflow",
            "api.workflows.list_workflows",
            "api.workflows.get_workflow",
            "api.workflows.activate_workflow",
            "api.runs.start_run",
            "api.runs.list_runs",
            "api.runs.get_run",
            "api.runs.stop_run",
        ]
        yield {name: importlib.import_module(f"{PACKAGE}.{name}") for name in names}
    finally:
        sys.path.remove(str(workdir / "out"))
        for name in [module for module in sys.modules if module.startswith(PACKAGE)]:
            del sys.modules[name]


def _http(app: FastAPI, token: str | None = None) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=BASE_URL, headers=headers
    )


async def test_a_generated_client_drives_the_seed_flow(
    app: FastAPI, generated: dict[str, ModuleType]
) -> None:
    client_module, models = generated["client"], generated["models"]
    api = generated

    anonymous = client_module.Client(base_url=BASE_URL)
    anonymous.set_async_httpx_client(_http(app))
    signed_up = await api["api.accounts.signup"].asyncio(
        client=anonymous,
        body=models.SignupRequest(email="client@example.com", password="correct horse battery"),
    )
    assert isinstance(signed_up, models.AuthResponse), signed_up

    client: Any = client_module.AuthenticatedClient(base_url=BASE_URL, token=signed_up.token)
    client.set_async_httpx_client(_http(app, signed_up.token))
    me = await api["api.accounts.get_me"].asyncio(client=client)
    assert isinstance(me, models.MeResponse)
    assert me.current_team_id == signed_up.team.id

    # A refused request comes back as the error model, with its code and field details.
    invalid = await api["api.workflows.create_workflow"].asyncio_detailed(
        client=client,
        body=models.CreateWorkflowRequest(goal="Post weekly", schedule="every monday"),
    )
    assert invalid.status_code == 422
    assert isinstance(invalid.parsed, models.ErrorResponse)
    assert invalid.parsed.code == models.ErrorCode.VALIDATION_ERROR
    assert [detail.field for detail in invalid.parsed.details] == ["schedule"]

    created = await api["api.workflows.create_workflow"].asyncio(
        client=client,
        body=models.CreateWorkflowRequest(
            goal="Publish a weekly LinkedIn post about AI news", schedule="0 9 * * MON"
        ),
    )
    assert isinstance(created, models.CreateWorkflowResponse), created
    assert created.status == "draft"
    assert created.steps
    workflow_id = created.workflow_id

    listed = await api["api.workflows.list_workflows"].asyncio(client=client)
    assert [workflow.id for workflow in listed] == [workflow_id]

    missing = await api["api.workflows.get_workflow"].asyncio("0" * 8, client=client)
    assert isinstance(missing, models.ErrorResponse)
    assert missing.code == models.ErrorCode.WORKFLOW_NOT_FOUND

    activated = await api["api.workflows.activate_workflow"].asyncio(workflow_id, client=client)
    assert isinstance(activated, models.WorkflowDetail), activated
    assert activated.status == models.WorkflowStatus.ACTIVE
    first_run = activated.workflow_runs[0]

    # The approval started run 1: another run must wait (409), until it is stopped.
    busy = await api["api.runs.start_run"].asyncio(workflow_id, client=client)
    assert isinstance(busy, models.ErrorResponse)
    assert busy.code == models.ErrorCode.RUN_ACTIVE
    stopped = await api["api.runs.stop_run"].asyncio(workflow_id, first_run.id, client=client)
    assert isinstance(stopped, models.RunSummary), stopped

    started = await api["api.runs.start_run"].asyncio(workflow_id, client=client)
    assert isinstance(started, models.RunStarted), started
    assert started.message == "Workflow run started"

    page = await api["api.runs.list_runs"].asyncio(workflow_id, client=client)
    assert isinstance(page, models.RunPage), page
    assert [run.id for run in page.runs] == [started.run_id, first_run.id]

    run = await api["api.runs.get_run"].asyncio(workflow_id, started.run_id, client=client)
    assert isinstance(run, models.RunDetail), run
    assert run.workflow_id == workflow_id
    assert run.conversation_id == started.conversation_id

    stopped = await api["api.runs.stop_run"].asyncio(workflow_id, started.run_id, client=client)
    assert isinstance(stopped, models.RunSummary), stopped
    assert stopped.status == models.RunStatus.FAILED
    assert stopped.failure_reason == "Stopped by user"

    ended = await api["api.runs.stop_run"].asyncio(workflow_id, started.run_id, client=client)
    assert isinstance(ended, models.ErrorResponse)
    assert ended.code == models.ErrorCode.RUN_ENDED
