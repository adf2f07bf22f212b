"""Email verification end to end through a real SMTP server, and what it changes: in
production, workflow emails go only to verified addresses, and the create response says who was
left out and why; in development nothing is held back."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from signoff.db import Database
from signoff.kit.clock import FrozenClock
from signoff.models import OutboxMail
from tests.support.accounts import HTML, PASSWORD, Account, as_browser, invite, signup
from tests.support.mailbox import link, mail_to
from tests.support.smtp import FakeSmtpServer
from tests.support.workflows import activate, create_workflow, wait_for_run

pytestmark = pytest.mark.postgres

VERIFY_SUBJECT = "Verify your email address"


async def verified(client: httpx.AsyncClient, account: Account) -> bool:
    me = await client.get("/api/me", headers=account.headers)
    return bool(me.json()["user"]["emailVerified"])


async def recipients(database: Database, kind: str) -> list[str]:
    async with database.read() as session:
        rows = await session.scalars(
            select(OutboxMail.to_address).where(OutboxMail.kind == kind).order_by(OutboxMail.id)
        )
        return list(rows)


async def verify_through_email(
    client: httpx.AsyncClient, smtp_server: FakeSmtpServer, account: Account, count: int = 1
) -> None:
    message = await mail_to(smtp_server, account.email, VERIFY_SUBJECT, count=count)
    path = link(message, "/dashboard/verify-email/")
    as_browser(client, None)
    done = await client.post(path, headers=HTML)
    assert done.status_code == 200, done.text


class TestDevelopment:
    @pytest.fixture
    def settings_overrides(self, smtp_server: FakeSmtpServer) -> dict[str, Any]:
        return {"smtp_url": smtp_server.url}

    async def test_signup_link_verifies_the_address(
        self, client: httpx.AsyncClient, smtp_server: FakeSmtpServer, database: Database
    ) -> None:
        account = await signup(client, "vera@example.com", name="Vera")
        message = await mail_to(smtp_server, "vera@example.com", VERIFY_SUBJECT)
        path = link(message, "/dashboard/verify-email/")
        as_browser(client, None)
        page = await client.get(path, headers=HTML)
        assert page.status_code == 200
        assert "vera@example.com" in page.text
        assert "Verify my address" in page.text
        assert not await verified(client, account)  # a GET (a mail scanner) changes nothing
        done = await client.post(path, headers=HTML)
        assert done.status_code == 200
        assert "vera@example.com is verified" in done.text
        assert await verified(client, account)
        # Opening it again is harmless and says so.
        again = await client.get(path, headers=HTML)
        assert again.status_code == 200
        assert "is verified" in again.text
        # Asking for a new link once verified is a conflict.
        fresh = await client.post("/api/me/verification-email", headers=account.headers)
        assert fresh.status_code == 409
        assert fresh.json()["code"] == "already_verified"
        bad = await client.get("/dashboard/verify-email/forged", headers=HTML)
        assert bad.status_code == 400
        assert "not valid" in bad.text

    async def test_expired_link_offers_a_new_one(
        self, client: httpx.AsyncClient, smtp_server: FakeSmtpServer, clock: FrozenClock
    ) -> None:
        account = await signup(client, "slow@example.com")
        old = link(
            await mail_to(smtp_server, account.email, VERIFY_SUBJECT), "/dashboard/verify-email/"
        )
        clock.advance(timedelta(days=7, seconds=1))
        as_browser(client, None)
        expired = await client.get(old, headers=HTML)
        assert expired.status_code == 400
        assert "expired" in expired.text
        assert f'action="{old}/resend"' in expired.text
        refused = await client.post(old, headers=HTML)
        assert refused.status_code == 400
        assert not await verified(client, account)

        resent = await client.post(f"{old}/resend", headers=HTML)
        assert resent.status_code == 200
        assert "slow@example.com" in resent.text
        await verify_through_email(client, smtp_server, account, count=2)
        assert await verified(client, account)

    async def test_api_sends_a_fresh_link(
        self, client: httpx.AsyncClient, smtp_server: FakeSmtpServer
    ) -> None:
        account = await signup(client, "api@example.com")
        response = await client.post("/api/me/verification-email", headers=account.headers)
        assert response.status_code == 200
        assert response.json()["emailedTo"] == ["api@example.com"]
        await verify_through_email(client, smtp_server, account, count=2)
        assert await verified(client, account)

    async def test_nothing_is_held_back(
        self, client: httpx.AsyncClient, smtp_server: FakeSmtpServer
    ) -> None:
        owner = await signup(client, "dev@example.com")
        body = await create_workflow(client, owner)
        assert body["emailedTo"] == ["dev@example.com"]
        assert "Not emailed" not in body["message"]
        await mail_to(smtp_server, "dev@example.com", "Approve your workflow plan")


class TestProduction:
    @pytest.fixture
    def settings_overrides(self, smtp_server: FakeSmtpServer) -> dict[str, Any]:
        return {"env": "production", "smtp_url": smtp_server.url}

    async def test_workflow_emails_go_only_to_verified_owners(
        self, client: httpx.AsyncClient, smtp_server: FakeSmtpServer, database: Database
    ) -> None:
        owner = await signup(client, "prod@example.com")
        body = await create_workflow(client, owner)
        first_id = body["workflowId"]
        assert body["emailedTo"] == []
        assert "No owner or admin of this team could be emailed" in body["message"]
        assert (
            "Not emailed: prod@example.com, because that address is not verified"
            in (body["message"])
        )
        assert await recipients(database, "plan_approval") == []

        # A co-owner who joined through an invitation is verified by it, and gets the emails.
        await invite(client, owner, owner.team_id, "co@example.com", "owner")
        path = link(
            await mail_to(smtp_server, "co@example.com", "invited you"), "/dashboard/invitations/"
        )
        as_browser(client, None)
        joined = await client.post(f"{path}/signup", data={"password": PASSWORD}, headers=HTML)
        assert joined.status_code == 200
        body = await create_workflow(client, owner)
        assert body["emailedTo"] == ["co@example.com"]
        assert "the approval link went to co@example.com" in body["message"]
        assert "Not emailed: prod@example.com" in body["message"]
        await mail_to(smtp_server, "co@example.com", "Approve your workflow plan")

        # Run emails follow the same rule: the step approval email skips the unverified owner.
        workflow_id = body["workflowId"]
        run_id = await activate(client, owner, workflow_id)
        await wait_for_run(client, owner, workflow_id, run_id, "awaiting_approval")
        assert await recipients(database, "step_approval") == ["co@example.com"]

        # Once verified, the owner gets them too, and the message stops mentioning it.
        await verify_through_email(client, smtp_server, owner)
        resent = await client.post(
            f"/api/workflows/{first_id}/approval-email", headers=owner.headers
        )
        assert resent.status_code == 200
        assert sorted(resent.json()["emailedTo"]) == ["co@example.com", "prod@example.com"]
        assert "Not emailed" not in resent.json()["message"]
        await mail_to(smtp_server, "prod@example.com", "Approve your workflow plan")
