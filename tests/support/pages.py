"""Acting as a person in a browser: a client with its own cookies that reads our pages."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import httpx
from fastapi import FastAPI

from tests.support import PASSWORD, Account, signup

HTML = {"Accept": "text/html"}
GOAL = "Write a LinkedIn post about our spring product launch"

Browser = Callable[[], AbstractAsyncContextManager[httpx.AsyncClient]]


def browser_factory(app: FastAPI) -> Browser:
    @asynccontextmanager
    async def browser() -> AsyncIterator[httpx.AsyncClient]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://testserver", headers=HTML
        ) as client:
            yield client

    return browser


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
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
    account = await signup(api)
    return account, await sign_in(browser, account)
