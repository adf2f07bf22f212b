"""GET /api/workflows: the whole list by default (the seed's bare array), or pages of
``?limit=`` with the next page's URL in the ``Link`` header; the schedule in words is stored
with the schedule."""

from __future__ import annotations

import base64
import re

import httpx
import pytest
from sqlalchemy import select

from signoff.db import Database
from signoff.models import Workflow
from tests.support.accounts import signup
from tests.support.workflows import activate, create_workflow, wait_for_run

pytestmark = pytest.mark.postgres


def _cursor(raw: str) -> str:
    return base64.urlsafe_b64encode(raw.encode()).decode()


_NEXT = re.compile(r'^<(?P<url>/api/workflows\?[^>]+)>; rel="next"$')


async def test_pages_follow_the_link_header_through_the_whole_list(
    client: httpx.AsyncClient,
) -> None:
    owner = await signup(client)
    ids = [(await create_workflow(client, owner))["workflowId"] for _ in range(5)]
    run_id = await activate(client, owner, ids[1])
    await wait_for_run(client, owner, ids[1], run_id, "awaiting_approval")

    whole = await client.get("/api/workflows", headers=owner.headers)
    assert "link" not in whole.headers
    assert [item["id"] for item in whole.json()] == ids[::-1]

    pages, url = [], "/api/workflows?limit=2"
    while True:
        page = await client.get(url, headers=owner.headers)
        assert page.status_code == 200
        pages.append(page.json())
        if "link" not in page.headers:
            break
        found = _NEXT.match(page.headers["link"])
        assert found, page.headers["link"]
        url = found["url"]
    assert [len(page) for page in pages] == [2, 2, 1]
    assert [item for page in pages for item in page] == whole.json()

    # A list item says what the workflow's detail says, its latest run included.
    detail = (await client.get(f"/api/workflows/{ids[1]}", headers=owner.headers)).json()
    [item] = [item for item in whole.json() if item["id"] == ids[1]]
    assert item["latestRun"] == detail["workflowRuns"][0]
    assert item["stepCount"] == len(detail["workflowSteps"])
    shared = {key: value for key, value in detail.items() if key in item}
    assert {key: item[key] for key in shared} == shared
    assert set(item) - set(shared) == {"stepCount", "latestRun"}


async def test_a_limit_as_large_as_the_list_has_no_next_page(client: httpx.AsyncClient) -> None:
    owner = await signup(client)
    for _ in range(2):
        await create_workflow(client, owner)
    page = await client.get("/api/workflows?limit=2", headers=owner.headers)
    assert len(page.json()) == 2
    assert "link" not in page.headers


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("limit=2&cursor=not-a-cursor", "cursor"),
        ("limit=2&cursor=MjAyNi0wMy0wMg", "cursor"),  # base64 of a date with no id
        ("limit=2&cursor=" + _cursor("workflows|2026-03-02T09:00:00+00:00|a\x00b"), "cursor"),
        ("limit=2&cursor=" + _cursor("workflows|9999-12-31T23:59:59-05:00|a"), "cursor"),
    ],
)
async def test_a_bad_limit_or_cursor_is_422_naming_it(
    client: httpx.AsyncClient, query: str, field: str
) -> None:
    owner = await signup(client)
    answer = await client.get(f"/api/workflows?{query}", headers=owner.headers)
    assert answer.status_code == 422
    assert [detail["field"] for detail in answer.json()["details"]] == [field]


async def test_the_schedule_in_words_is_stored_with_the_schedule(
    client: httpx.AsyncClient, database: Database
) -> None:
    owner = await signup(client)
    workflow_id = (
        await create_workflow(client, owner, schedule="0 9 * * MON", timezone="Europe/Paris")
    )["workflowId"]

    async def stored() -> str | None:
        async with database.read() as session:
            return await session.scalar(
                select(Workflow.schedule_description).where(Workflow.id == workflow_id)
            )

    assert await stored() == "At 09:00, only on Monday"
    changed = await client.patch(
        f"/api/workflows/{workflow_id}", json={"schedule": "30 7 * * *"}, headers=owner.headers
    )
    assert changed.json()["scheduleDescription"] == "At 07:30"
    assert await stored() == "At 07:30"
    await client.patch(
        f"/api/workflows/{workflow_id}", json={"schedule": None}, headers=owner.headers
    )
    assert await stored() is None
