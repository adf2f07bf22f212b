"""`signoff serve --workers 2`: two processes answer on one port, and exactly one engine,
scheduler and mail sender run across them (the first process's), on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.support.accounts import Account, signup
from tests.support.postgres import fresh_postgres_database
from tests.support.processes import Process, emails_sent_once, processes
from tests.support.smtp import FakeSmtpServer, running_smtp_server
from tests.support.waiting import wait_until_sync
from tests.support.workflows import create_workflow, wait_for_run

pytestmark = pytest.mark.processes

WORKFLOWS = 6
_STARTED = re.compile(r"\[(\d+)\] INFO uvicorn.error: Application startup complete")
_BACKGROUND = re.compile(r"\[(\d+)\] INFO signoff.runtime: background parts started")
_STATE_CHANGE = re.compile(r"\[(\d+)\] INFO uvicorn.access: .*\"POST /api/workflows/\S+ HTTP")


def children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children", encoding="ascii") as handle:
        return [int(child) for child in handle.read().split()]


async def post_alone(base: str, account: Account, path: str, **kwargs: object) -> httpx.Response:
    """A POST on a connection of its own: each is accepted by whichever process is free."""
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        response = await client.post(path, headers=account.headers, **kwargs)  # type: ignore[arg-type]
    assert response.status_code == 200, response.text
    return response


@dataclass
class Served:
    serve: Process
    base: str
    database_url: str
    smtp: FakeSmtpServer


@pytest.fixture(params=["sqlite", "postgresql"])
def served(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Served]:
    """``signoff serve --workers 2`` on SQLite or PostgreSQL, mailing a local SMTP server."""
    with ExitStack() as stack:
        smtp = stack.enter_context(running_smtp_server())
        settings: dict[str, object] = {
            "smtp_url": smtp.url,
            "data_dir": tmp_path / "data",
            # Far beyond the test's waits: the runs must go on because the job was handed over
            # to the engine's process, not because its sweep found them.
            "sweep_interval_seconds": 600,
        }
        database_url = f"sqlite+aiosqlite:///{tmp_path}/data/signoff.db"
        if request.param == "postgresql":
            database_url = stack.enter_context(fresh_postgres_database("workers"))
            settings["database_url"] = database_url
        started = stack.enter_context(processes(tmp_path))
        serve, base = started.serve(args=("--workers", "2"), **settings)

        def both_started() -> bool:
            return len(set(_STARTED.findall(serve.output()))) == 2

        wait_until_sync(both_started, "both processes to start", timeout=120, watch=(serve,))
        yield Served(serve, base, database_url, smtp)


async def test_two_processes_serve_and_one_runs_the_engine_and_the_mail(served: Served) -> None:
    serve, base, database_url, smtp = served.serve, served.base, served.database_url, served.smtp
    [child] = children(serve.pid)

    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        owner = await signup(client)
        drafts = [(await create_workflow(client, owner))["workflowId"] for _ in range(WORKFLOWS)]
        activated = await asyncio.gather(
            *(post_alone(base, owner, f"/api/workflows/{w}/activate") for w in drafts)
        )
        runs = [
            (w, answer.json()["workflowRuns"][0]["id"])
            for w, answer in zip(drafts, activated, strict=True)
        ]
        for workflow_id, run_id in runs:
            await wait_for_run(client, owner, workflow_id, run_id, "awaiting_approval", timeout=60)
        await asyncio.gather(
            *(
                post_alone(
                    base,
                    owner,
                    f"/api/workflows/{w}/runs/{r}/decision",
                    json={"action": "approve"},
                )
                for w, r in runs
            )
        )
        for workflow_id, run_id in runs:
            done = await wait_for_run(client, owner, workflow_id, run_id, "completed", timeout=60)
            assert done["runNumber"] == 1
            assert {step["status"] for step in done["steps"]} == {"completed"}
        listed = (await client.get("/api/workflows", headers=owner.headers)).json()
        assert [item["latestRun"]["runNumber"] for item in listed] == [1] * WORKFLOWS
        ready = await asyncio.gather(*(client.get("/readyz") for _ in range(20)))
        assert {answer.status_code for answer in ready} == {200}

    # Both processes took state changes (so the hand-over to the engine's process was used).
    served = Counter(int(pid) for pid in _STATE_CHANGE.findall(serve.output()))
    assert set(served) == {serve.pid, child}, served
    # One email per event, each delivered once: the plan, the step approval, the completion.
    kinds = await emails_sent_once(database_url, smtp, owner.email, timeout=60)
    assert kinds["plan_approval"] == WORKFLOWS
    assert kinds["step_approval"] == WORKFLOWS
    assert kinds["run_completed"] == WORKFLOWS
    # One process started the engine, the scheduler and the mail sender: the first.
    assert _BACKGROUND.findall(serve.output()) == [str(serve.pid)]
    assert_serves_until_stopped(serve, child)


def assert_serves_until_stopped(serve: Process, child: int) -> None:
    """SIGTERM to the first process stops the other one before it exits itself."""
    serve.terminate()
    assert serve.popen.wait(timeout=60) == 0
    assert not Path(f"/proc/{child}").exists()
