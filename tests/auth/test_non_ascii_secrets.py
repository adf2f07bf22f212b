"""A secret a client sends (the CSRF token, the metrics token, the notice cookie) may hold any
text: one with non-ASCII characters is refused like any wrong secret, never a 500
(kit/constant_time.py)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from signoff.auth.dependencies import SESSION_COOKIE
from signoff.dashboard.pages import FLASH_COOKIE
from tests.support.accounts import as_browser, signup
from tests.support.workflows import create_workflow

METRICS_TOKEN = "metrics-token-for-the-tests-0123"


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"metrics_token": METRICS_TOKEN}


async def test_non_ascii_secrets_are_wrong_secrets(client: httpx.AsyncClient) -> None:
    account = await signup(client)
    workflow_id = (await create_workflow(client, account))["workflowId"]
    as_browser(client, account)
    for sent in ("café", "\u200b" * 40):
        forged = await client.post(
            f"/api/workflows/{workflow_id}/archive", headers={"X-CSRF-Token": sent.encode()}
        )
        assert (forged.status_code, forged.json()["code"]) == (403, "csrf_failed")
        form = await client.post(
            f"/dashboard/workflows/{workflow_id}/archive", data={"csrf_token": sent}
        )
        assert form.status_code == 403
        scrape = await client.get("/metrics", headers={"Authorization": f"Bearer {sent}".encode()})
        assert scrape.status_code == 401
        cookies = f"{SESSION_COOKIE}={account.token}; {FLASH_COOKIE}=eyJ9.{sent}"
        page = await client.get(
            f"/dashboard/workflows/{workflow_id}", headers={"Cookie": cookies.encode()}
        )
        assert page.status_code == 200
    status = await client.get(f"/api/workflows/{workflow_id}", headers=account.headers)
    assert status.json()["status"] == "draft"  # nothing was archived
