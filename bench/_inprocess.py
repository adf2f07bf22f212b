"""The database work of a step, counted in this process (inline queue, SQLite).

The application runs here (``create_app`` + its lifespan, requests through httpx's ASGI
transport, no socket), so SQLAlchemy's events can count every statement and transaction the
engine issues per step; two small loops then price one ORM statement and one empty write
transaction on the same database. Nothing of Signoff is changed: the counters only listen.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import re
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from _agent_cost import FIVE_STEPS, PLAN_GOAL

_TABLE = re.compile(r"\b(?:INTO|FROM|UPDATE)\s+(\w+)", re.IGNORECASE)


def _kind(statement: str) -> str:
    verb = statement.split(None, 1)[0].upper()
    table = _TABLE.search(statement)
    return f"{verb} {table.group(1)}" if table else verb


def _direct_caller(frame: Any) -> str:
    """Who runs the direct transaction on this thread's stack: the function given to
    ``Database.write_direct`` (the ``work`` of ``signoff.db._Direct.run``) says."""
    while frame is not None:
        code = frame.f_code
        if code.co_name == "run" and code.co_filename.endswith("signoff/db.py"):
            work = frame.f_locals.get("work")
            work_code = getattr(getattr(work, "func", work), "__code__", None)
            in_sender = work_code is not None and work_code.co_filename.endswith("mail/sender.py")
            return "mail sender" if in_sender else "engine"
        frame = frame.f_back
    return "engine"


async def measure(workflows: int, rounds: int) -> dict[str, Any]:
    from sqlalchemy import Engine, event

    from signoff.app import create_app
    from signoff.config import Settings
    from signoff.migrations.runner import upgrade
    from signoff.runs import repository

    logging.disable(logging.INFO)  # the dev mailbox would print every email here
    with tempfile.TemporaryDirectory(prefix="signoff_bench_inprocess_") as scratch:
        settings = Settings(
            _env_file=None,
            data_dir=Path(scratch),
            token_secret="bench-" + "x" * 48,
            llm_model="offline",
        )
        await asyncio.to_thread(upgrade, settings.effective_database_url)
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
                response = await client.post(
                    "/api/auth/signup",
                    json={"email": "bench@example.com", "password": "correct horse battery"},
                )
                headers = {"Authorization": f"Bearer {response.json()['token']}"}
                ids = []
                for _ in range(workflows):
                    draft = await client.post(
                        "/api/workflows", json={"goal": PLAN_GOAL}, headers=headers
                    )
                    workflow_id = draft.json()["workflowId"]
                    await client.post(
                        f"/api/workflows/{workflow_id}/steps",
                        json={"mode": "replace", "steps": FIVE_STEPS},
                        headers=headers,
                    )
                    await client.post(f"/api/workflows/{workflow_id}/activate", headers=headers)
                    ids.append(workflow_id)
                queue = app.state.queue
                await queue.idle()

                # Each statement is counted for the asyncio task that issued it: the engine's
                # workers and sweep, the mail sender, or this client (the API requests). A
                # direct transaction runs in a thread of its own, where the function it runs
                # (in the executor or the mail sender) is on the stack.
                counts: dict[str, collections.Counter[str]] = collections.defaultdict(
                    collections.Counter
                )
                sync_engine = Engine  # every engine: the async one's and the direct one

                orm: collections.Counter[str] = collections.Counter()

                def on_statement(*args: Any) -> None:
                    if threading.current_thread().name.startswith("signoff-db"):
                        counts[_direct_caller(sys._getframe())][_kind(args[2])] += 1
                        return
                    task = asyncio.current_task()
                    name = task.get_name() if task else ""
                    if name.startswith(("signoff-worker", "signoff-sweep")):
                        who = "engine"
                    elif name.startswith("signoff-mail"):
                        who = "mail sender"
                    else:
                        who = "API"
                    counts[who][_kind(args[2])] += 1
                    orm[who] += 1

                event.listen(sync_engine, "before_cursor_execute", on_statement)
                began = time.process_time()
                for _ in range(rounds):
                    for workflow_id in ids:
                        started = await client.post(
                            f"/api/workflows/{workflow_id}/run", headers=headers
                        )
                        assert started.status_code == 201, started.text
                    await queue.idle()
                await asyncio.sleep(0.5)  # the completion emails
                cpu = time.process_time() - began
                event.remove(sync_engine, "before_cursor_execute", on_statement)
                runs = rounds * len(ids)
                steps = runs * 5

                # Price one ORM statement (the engine's run lock) and one empty write.
                db = app.state.db
                run_id = 1
                repeat = 300
                async with db.write() as session:
                    began = time.process_time()
                    for _ in range(repeat):
                        await repository.lock_run(session, run_id)
                    per_statement = (time.process_time() - began) / repeat
                began = time.process_time()
                for _ in range(repeat):
                    async with db.write():
                        pass
                per_transaction = (time.process_time() - began) / repeat
    logging.disable(logging.NOTSET)
    engine = counts["engine"]
    return {
        "steps": steps,
        "cpu_per_step": cpu / steps,
        "statements_per_step": sum(engine.values()) / steps,
        "transactions_per_step": engine["BEGIN"] / steps,
        "by_kind": {k: v / steps for k, v in engine.most_common()},
        "api_statements_per_run": sum(counts["API"].values()) / runs,
        "mail_statements_per_run": sum(counts["mail sender"].values()) / runs,
        "orm_statements_per_step": orm["engine"] / steps,
        "mail_orm_statements_per_run": orm["mail sender"] / runs,
        "orm_statement_cpu": per_statement,
        "empty_write_cpu": per_transaction,
    }
