"""Sign up, sign in, sign out from the dashboard."""

from __future__ import annotations

import httpx
from sqlalchemy import select

from signoff.auth.dependencies import SESSION_COOKIE
from signoff.db import Database
from signoff.models import AuthSession, Membership, Role, Team, User
from tests.support.accounts import PASSWORD, signup
from tests.support.db import count
from tests.support.pages import Browser, csrf_of


async def test_sign_up_creates_an_account_with_its_team_and_signs_in(
    browser: Browser, database: Database
) -> None:
    async with browser() as page:
        form = await page.get("/dashboard/signup")
        assert form.status_code == 200
        for label in ('for="name">Name<', 'for="email">Email<', 'for="password">Password<'):
            assert label in form.text
        assert ">Create account</button>" in form.text
        assert 'href="/dashboard/login">Sign in</a>' in form.text

        response = await page.post(
            "/dashboard/signup",
            data={"name": "Ada", "email": "Ada@Example.com", "password": PASSWORD},
        )
        assert response.status_code == 303
        assert response.headers["location"] == "/dashboard"
        assert page.cookies.get(SESSION_COOKIE)
        home = await page.get("/dashboard")
        assert home.status_code == 200
        assert "No workflows yet" in home.text
        assert ">Sign out</button>" in home.text
    async with database.read() as session:
        user = await session.scalar(select(User).where(User.email == "ada@example.com"))
        assert user is not None
        assert user.name == "Ada"
        membership = await session.scalar(select(Membership).where(Membership.user_id == user.id))
        assert membership is not None
        assert membership.role == Role.OWNER


async def test_sign_up_problems_re_render_the_form_and_create_nothing(
    browser: Browser, client: httpx.AsyncClient, database: Database
) -> None:
    taken = await signup(client)
    async with browser() as page:
        short = await page.post(
            "/dashboard/signup", data={"name": "B", "email": "b@example.com", "password": "short"}
        )
        assert short.status_code == 422
        assert "at least 8 characters" in short.text
        assert 'value="b@example.com"' in short.text  # what was typed stays
        bad_email = await page.post(
            "/dashboard/signup", data={"email": "not-an-address", "password": PASSWORD}
        )
        assert bad_email.status_code == 422
        assert 'id="email-error"' in bad_email.text
        duplicate = await page.post(
            "/dashboard/signup", data={"email": taken.email, "password": PASSWORD}
        )
        assert duplicate.status_code == 409
        assert "already exists" in duplicate.text
        assert not page.cookies.get(SESSION_COOKIE)
    assert await count(database, User) == 1
    assert await count(database, Team) == 1


async def test_sign_in_page_links_to_sign_up(browser: Browser) -> None:
    async with browser() as page:
        response = await page.get("/dashboard/login")
    assert 'href="/dashboard/signup">Create an account</a>' in response.text


async def test_sign_out_needs_the_csrf_token_and_ends_the_session(
    browser: Browser, client: httpx.AsyncClient
) -> None:
    account = await signup(client)
    async with browser() as page:
        await page.post("/dashboard/login", data={"email": account.email, "password": PASSWORD})
        csrf = csrf_of((await page.get("/dashboard")).text)

        forged = await page.post("/dashboard/logout")
        assert forged.status_code == 403
        assert "did not come from Signoff" in forged.text
        assert (await page.get("/dashboard")).status_code == 200  # still signed in

        token = page.cookies[SESSION_COOKIE]
        response = await page.post("/dashboard/logout", data={"csrf_token": csrf})
        assert response.status_code == 303
        assert response.headers["location"] == "/dashboard/login"
        assert not page.cookies.get(SESSION_COOKIE)
    # The session is revoked server-side, not just forgotten by the browser.
    me = await client.get("/api/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 401


async def test_pages_send_the_browser_to_sign_in(browser: Browser) -> None:
    async with browser() as page:
        for path in ("/dashboard", "/dashboard/workflows/new", "/dashboard/workflows/x/runs/1"):
            response = await page.get(path)
            assert response.status_code == 303
            assert response.headers["location"] == f"/dashboard/login?next={path}"


async def test_sign_in_and_sign_up_forms_from_another_site_are_refused(
    browser: Browser, client: httpx.AsyncClient, database: Database
) -> None:
    # Login CSRF: a hostile page posts the attacker's credentials, and the visitor would work
    # in the attacker's account. There is no session yet to derive a token from, so the
    # browser's word on where the form came from decides.
    account = await signup(client)
    credentials = {"email": account.email, "password": PASSWORD}
    sessions_before = await count(database, AuthSession)
    async with browser() as page:
        for headers in (
            {"Sec-Fetch-Site": "cross-site"},
            {"Sec-Fetch-Site": "same-site"},  # a sibling subdomain is another origin
            {"Origin": "https://evil.example"},  # an older browser: Origin only
            {"Origin": "null"},
        ):
            login = await page.post("/dashboard/login", data=credentials, headers=headers)
            assert login.status_code == 403, headers
            assert "did not come from Signoff" in login.text
            created = await page.post(
                "/dashboard/signup",
                data={"email": "new@example.com", "password": PASSWORD},
                headers=headers,
            )
            assert created.status_code == 403, headers
            assert "set-cookie" not in login.headers
            assert "set-cookie" not in created.headers
        assert not page.cookies.get(SESSION_COOKIE)
    assert await count(database, AuthSession) == sessions_before
    assert await count(database, User) == 1

    # Our own page (what a browser says of it), and a client that is no browser at all.
    for headers in (
        {"Sec-Fetch-Site": "same-origin", "Origin": "http://testserver"},
        {"Origin": "http://testserver"},
        {},
    ):
        async with browser() as page:
            login = await page.post("/dashboard/login", data=credentials, headers=headers)
            assert login.status_code == 303, headers
            assert page.cookies.get(SESSION_COOKIE)
