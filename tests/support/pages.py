"""The dashboard over ASGI, as a person in a browser uses it: a client with its own cookies (or
the test's client with a session cookie) that reads our pages and submits their forms with
their CSRF token."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import httpx
from fastapi import FastAPI

from tests.support.accounts import HTML, PASSWORD, Account, as_browser, signup
from tests.support.settings import BASE_URL
from tests.support.workflows import GOAL, wait_for_run

Browser = Callable[[], AbstractAsyncContextManager[httpx.AsyncClient]]
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def browser_factory(app: FastAPI) -> Browser:
    @asynccontextmanager
    async def browser() -> AsyncIterator[httpx.AsyncClient]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url=BASE_URL, headers={"Accept": "text/html"}
        ) as client:
            yield client

    return browser


def csrf_of(html: str) -> str:
    """The CSRF token of the page's (first) form."""
    found = _CSRF.search(html)
    assert found, "the page has no form with a CSRF token"
    return found.group(1)


async def sign_in(browser: httpx.AsyncClient, account: Account) -> str:
    """Sign in through the form; returns the CSRF token of the session."""
    response = await browser.post(
        "/dashboard/login", data={"email": account.email, "password": PASSWORD}
    )
    assert response.status_code == 303, response.text
    page = await browser.get("/dashboard")
    assert page.status_code == 200
    return csrf_of(page.text)


async def new_account(api: httpx.AsyncClient, browser: httpx.AsyncClient) -> tuple[Account, str]:
    """A new person signed up through the API and signed in in ``browser``: (them, CSRF)."""
    account = await signup(api)
    return account, await sign_in(browser, account)


async def open_page(
    client: httpx.AsyncClient, account: Account | None, path: str
) -> httpx.Response:
    """GET a page as a browser signed in as ``account`` (None: signed out)."""
    as_browser(client, account)
    return await client.get(path, headers=HTML)


async def post_form(
    client: httpx.AsyncClient,
    account: Account,
    page_path: str,
    action: str,
    data: dict[str, str] | None = None,
    *,
    csrf: bool = True,
) -> httpx.Response:
    """Submit a form the way a browser does: open the page, post with its CSRF token."""
    shown = await open_page(client, account, page_path)
    assert shown.status_code == 200, shown.text
    fields = dict(data or {})
    if csrf:
        fields["csrf_token"] = csrf_of(shown.text)
    return await client.post(action, data=fields, headers=HTML)


async def draft_on_page(browser: httpx.AsyncClient, csrf: str, **fields: str) -> str:
    """Draft a workflow with the new workflow form (GOAL unless ``goal=``); its id."""
    response = await browser.post(
        "/dashboard/workflows", data={"goal": GOAL, "csrf_token": csrf, **fields}
    )
    assert response.status_code == 303, response.text
    location: str = response.headers["location"]
    return location.rsplit("/", 1)[1]


async def paused_run_on_pages(
    client: httpx.AsyncClient, browser: httpx.AsyncClient, account: Account, csrf: str
) -> tuple[str, int]:
    """A workflow drafted and approved from its page, with run 1 waiting at its post."""
    workflow_id = await draft_on_page(browser, csrf)
    approved = await browser.post(
        f"/dashboard/workflows/{workflow_id}/activate", data={"csrf_token": csrf}
    )
    assert approved.status_code == 303
    detail = await client.get(f"/api/workflows/{workflow_id}", headers=account.headers)
    run_id: int = detail.json()["workflowRuns"][0]["id"]
    await wait_for_run(client, account, workflow_id, run_id, "awaiting_approval")
    return workflow_id, run_id
