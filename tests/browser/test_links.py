"""The plan approval link from the email, opened in a browser (SPEC §6, confirm mode)."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import Server
from tests.browser.support import (
    api_create_workflow,
    api_signup,
    api_workflow,
    new_email,
    outbox_links,
    shot,
    sign_in,
)

pytestmark = pytest.mark.browser


def test_plan_link_without_a_session_asks_first(server: Server, page: Page) -> None:
    email = new_email("owner")
    headers = api_signup(server, email)
    workflow_id = api_create_workflow(server, headers)
    [link] = [url for url in outbox_links(server, email, "plan_approval") if "/approve" in url]

    page.goto(link)
    expect(page.get_by_role("heading", name="Approve this plan?")).to_be_visible()
    # Nothing acts on the link by itself: no inline script, and nothing decided yet.
    assert page.locator("script:not([src])").count() == 0
    assert api_workflow(server, headers, workflow_id)["status"] == "draft"
    shot(page, "link-plan-confirm")

    page.get_by_role("button", name=re.compile("Approve")).click()
    # Decided; the dashboard asks this browser (no session) to sign in first.
    expect(page).to_have_url(re.compile(rf"/dashboard/login\?next=.*{workflow_id}"))
    assert api_workflow(server, headers, workflow_id)["status"] == "active"


def test_plan_link_signed_in_as_owner_decides_at_once(
    server: Server, new_page: Callable[[], Page]
) -> None:
    email = new_email("owner")
    headers = api_signup(server, email)
    workflow_id = api_create_workflow(server, headers)
    [link] = [url for url in outbox_links(server, email, "plan_approval") if "/approve" in url]

    page = new_page()
    sign_in(page, email)
    page.goto(link)
    expect(page).to_have_url(f"{server.base_url}/dashboard/workflows/{workflow_id}")
    assert api_workflow(server, headers, workflow_id)["status"] == "active"
