"""Invitations end to end: the email through a real SMTP server, its link, the pages; and
every way an invitation can't be used (nothing changes then)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from markupsafe import escape
from sqlalchemy import select

from signoff.db import Database
from signoff.kit.clock import FrozenClock
from signoff.models import Invitation, Role
from tests.support.accounts import (
    HTML,
    PASSWORD,
    Account,
    as_browser,
    invite,
    join,
    roles,
    signup,
    signup_into,
)
from tests.support.db import count
from tests.support.mailbox import link, mail_to, text_of
from tests.support.pages import csrf_of
from tests.support.smtp import FakeSmtpServer

pytestmark = pytest.mark.postgres

INVITE_SUBJECT = "invited you to join"


@pytest.fixture
def settings_overrides(smtp_server: FakeSmtpServer) -> dict[str, Any]:
    return {"smtp_url": smtp_server.url}


async def invitations(
    client: httpx.AsyncClient, account: Account, team_id: str
) -> list[dict[str, Any]]:
    response = await client.get(f"/api/teams/{team_id}/invitations", headers=account.headers)
    assert response.status_code == 200, response.text
    rows: list[dict[str, Any]] = response.json()
    return rows


async def test_new_person_signs_up_through_the_link_and_joins(
    client: httpx.AsyncClient, database: Database, smtp_server: FakeSmtpServer
) -> None:
    owner = await signup(client, "olive@example.com", name="Olive")
    sent = await invite(client, owner, owner.team_id, "New.Person@Example.com", "admin")
    assert sent.status_code == 201, sent.text
    body = sent.json()
    assert body["email"] == "new.person@example.com"
    assert body["role"] == "admin"
    assert body["status"] == "pending"
    assert body["invitedBy"] == "olive@example.com"
    assert "new.person@example.com" in body["message"]

    message = await mail_to(smtp_server, "new.person@example.com", INVITE_SUBJECT)
    assert "Olive" in str(message["Subject"])
    assert "as an admin" in text_of(message)
    assert "7 days" in text_of(message)
    path = link(message, "/dashboard/invitations/")
    token = path.rsplit("/", 1)[1]
    async with database.read() as session:
        # Stored hashed, like session tokens: the link is in the email only.
        assert await session.scalar(select(Invitation.token_hash)) != token

    as_browser(client, None)
    page = await client.get(path, headers=HTML)
    assert page.status_code == 200
    assert "Create account and join" in page.text
    assert "new.person@example.com" in page.text
    assert page.headers["cache-control"] == "no-store"

    too_short = await client.post(f"{path}/signup", data={"password": "short"}, headers=HTML)
    assert too_short.status_code == 422
    assert "at least 8 characters" in too_short.text
    assert len(await roles(database, owner.team_id)) == 1

    joined = await client.post(
        f"{path}/signup", data={"name": "Nia", "password": PASSWORD}, headers=HTML
    )
    assert joined.status_code == 200, joined.text
    assert str(escape("You joined Olive's team")) in joined.text
    session_token = client.cookies.get("signoff_session")
    assert session_token
    me = await client.get("/api/me", headers={"Authorization": f"Bearer {session_token}"})
    assert me.json()["user"]["emailVerified"] is True  # the link reached the address
    # The account joined this team only: no team of its own to land in.
    assert [(team["id"], team["role"]) for team in me.json()["teams"]] == [(owner.team_id, "admin")]
    [row] = await invitations(client, owner, owner.team_id)
    assert row["status"] == "accepted"
    members = await client.get(f"/api/teams/{owner.team_id}/members", headers=owner.headers)
    assert [(m["email"], m["role"], m["emailVerified"]) for m in members.json()] == [
        ("olive@example.com", "owner", False),
        ("new.person@example.com", "admin", True),
    ]

    # Used twice: refused, clearly, whoever opens it; nothing changes.
    as_browser(client, None)
    again = await client.get(path, headers=HTML)
    assert again.status_code == 400
    assert "already used" in again.text
    replay = await client.post(f"{path}/signup", data={"password": PASSWORD}, headers=HTML)
    assert replay.status_code == 400
    assert "already used" in replay.text
    assert len(await roles(database, owner.team_id)) == 2


async def test_existing_user_signs_in_then_joins(
    client: httpx.AsyncClient, database: Database, smtp_server: FakeSmtpServer
) -> None:
    owner = await signup(client)
    bea = await signup(client, "bea@example.com")
    assert (await invite(client, owner, owner.team_id, "bea@example.com")).status_code == 201
    message = await mail_to(smtp_server, "bea@example.com", INVITE_SUBJECT)
    assert "Sign in with this address" in text_of(message)
    path = link(message, "/dashboard/invitations/")

    as_browser(client, None)
    page = await client.get(path, headers=HTML)
    assert page.status_code == 200
    assert "Sign in to accept" in page.text
    # Accepting without a session goes to the sign-in page, which comes back here.
    bounced = await client.post(f"{path}/accept", headers=HTML)
    assert bounced.status_code == 303
    login = bounced.headers["location"]
    assert login.startswith("/dashboard/login?next=")
    signed_in = await client.post(
        "/dashboard/login",
        data={"email": "bea@example.com", "password": PASSWORD, "next": path},
        headers=HTML,
    )
    assert signed_in.status_code == 303
    assert signed_in.headers["location"] == path
    join_page = await client.get(path, headers=HTML)
    assert join_page.status_code == 200
    assert "Join " in join_page.text
    assert len(await roles(database, owner.team_id)) == 1  # a GET changes nothing

    # The cookie says who joins: without the session's CSRF token nothing happens.
    forged = await client.post(f"{path}/accept", headers=HTML)
    assert forged.status_code == 403
    assert len(await roles(database, owner.team_id)) == 1
    csrf = {"csrf_token": csrf_of(join_page.text)}
    joined = await client.post(f"{path}/accept", data=csrf, headers=HTML)
    assert joined.status_code == 200
    assert "You joined" in joined.text
    assert (await roles(database, owner.team_id))[bea.user_id] == Role.MEMBER
    me = (await client.get("/api/me", headers=bea.headers)).json()
    assert {team["id"] for team in me["teams"]} == {bea.team_id, owner.team_id}
    # Used twice, even by the same person.
    twice = await client.post(f"{path}/accept", data=csrf, headers=HTML)
    assert twice.status_code == 400
    assert "already used" in twice.text


async def test_signed_in_as_another_address_is_refused_and_nothing_changes(
    client: httpx.AsyncClient, database: Database, smtp_server: FakeSmtpServer
) -> None:
    owner = await signup(client)
    other = await signup(client, "other@example.com")
    await invite(client, owner, owner.team_id, "invited@example.com")
    path = link(
        await mail_to(smtp_server, "invited@example.com", INVITE_SUBJECT),
        "/dashboard/invitations/",
    )

    as_browser(client, other)
    page = await client.get(path, headers=HTML)
    assert page.status_code == 403
    assert "This invitation is for invited@example.com" in page.text
    assert "you are signed in as other@example.com" in page.text
    csrf = {"csrf_token": csrf_of(page.text)}
    refused = await client.post(f"{path}/accept", data=csrf, headers=HTML)
    assert refused.status_code == 403
    assert "invited@example.com" in refused.text
    assert other.user_id not in await roles(database, owner.team_id)
    [row] = await invitations(client, owner, owner.team_id)
    assert row["status"] == "pending"

    # The page's button signs out and comes back to the invitation, ready for the right person.
    # Signing out is the cookie's change too: not without the CSRF token.
    kept = await client.post(f"{path}/switch-account", headers=HTML)
    assert kept.status_code == 403
    assert (await client.get("/api/me", headers=other.headers)).status_code == 200
    switched = await client.post(f"{path}/switch-account", data=csrf, headers=HTML)
    assert switched.status_code == 303
    assert switched.headers["location"] == path
    assert 'signoff_session=""' in switched.headers["set-cookie"]
    assert (await client.get("/api/me", headers=other.headers)).status_code == 401
    fresh = await client.get(path, headers=HTML)
    assert fresh.status_code == 200
    assert "Create account and join" in fresh.text


async def test_expired_revoked_and_member_invitations_are_refused(
    client: httpx.AsyncClient,
    database: Database,
    smtp_server: FakeSmtpServer,
    clock: FrozenClock,
) -> None:
    owner = await signup(client)
    member = await signup_into(
        client, database, owner.team_id, Role.MEMBER, email="member@example.com"
    )

    # Inviting someone who is already a member: 409, no invitation, no email.
    existing = await invite(client, owner, owner.team_id, "MEMBER@example.com")
    assert existing.status_code == 409
    assert existing.json()["code"] == "already_member"
    assert "member@example.com is already a member" in existing.json()["error"]
    assert await count(database, Invitation) == 0
    own = await invite(client, owner, owner.team_id, owner.email)
    assert own.status_code == 409
    # Invited, then added another way before accepting: the link says so and changes nothing.
    joiner = await signup(client, "joiner@example.com")
    await invite(client, owner, owner.team_id, "joiner@example.com", "admin")
    path = link(await mail_to(smtp_server, "joiner@example.com", INVITE_SUBJECT), "/dashboard/")
    await join(database, owner.team_id, joiner, Role.MEMBER)
    as_browser(client, joiner)
    already = await client.get(path, headers=HTML)
    assert already.status_code == 409
    assert "already a member" in already.text
    csrf = {"csrf_token": (await client.get("/api/me")).json()["csrfToken"]}
    assert (await client.post(f"{path}/accept", data=csrf, headers=HTML)).status_code == 409
    assert (await roles(database, owner.team_id))[joiner.user_id] == Role.MEMBER

    # Expired: 7 days later the link only explains itself.
    await invite(client, owner, owner.team_id, "late@example.com")
    late = link(await mail_to(smtp_server, "late@example.com", INVITE_SUBJECT), "/dashboard/")
    clock.advance(timedelta(days=7, seconds=1))
    as_browser(client, None)
    expired = await client.get(late, headers=HTML)
    assert expired.status_code == 400
    assert "expired" in expired.text
    assert "ask the team for a new one" in expired.text
    refused = await client.post(f"{late}/signup", data={"password": PASSWORD}, headers=HTML)
    assert refused.status_code == 400
    assert "expired" in refused.text
    assert (await client.get("/api/me", headers=owner.headers)).status_code == 200

    # Revoked: the link stops working at once; revoking twice is a conflict.
    sent = await invite(client, owner, owner.team_id, "gone@example.com")
    gone = link(await mail_to(smtp_server, "gone@example.com", INVITE_SUBJECT), "/dashboard/")
    revoke_path = f"/api/teams/{owner.team_id}/invitations/{sent.json()['id']}"
    assert (await client.delete(revoke_path, headers=owner.headers)).status_code == 204
    withdrawn = await client.get(gone, headers=HTML)
    assert withdrawn.status_code == 400
    assert "withdrawn" in withdrawn.text
    again = await client.delete(revoke_path, headers=owner.headers)
    assert again.status_code == 409
    assert again.json()["code"] == "invitation_revoked"

    # Inviting an address again replaces its open invitation: only the newest link works.
    await invite(client, owner, owner.team_id, "twice@example.com")
    first = link(await mail_to(smtp_server, "twice@example.com", INVITE_SUBJECT), "/dashboard/")
    await invite(client, owner, owner.team_id, "twice@example.com", "admin")
    second = link(
        await mail_to(smtp_server, "twice@example.com", INVITE_SUBJECT, count=2), "/dashboard/"
    )
    assert (await client.get(first, headers=HTML)).status_code == 400
    assert (await client.get(second, headers=HTML)).status_code == 200

    statuses = {
        (row["email"], row["status"]) for row in await invitations(client, owner, owner.team_id)
    }
    assert statuses == {
        ("joiner@example.com", "expired"),  # the clock moved on since
        ("late@example.com", "expired"),
        ("gone@example.com", "revoked"),
        ("twice@example.com", "revoked"),
        ("twice@example.com", "pending"),
    }
    assert set(await roles(database, owner.team_id)) == {
        owner.user_id,
        member.user_id,
        joiner.user_id,
    }
    assert not [
        m
        for m in smtp_server.messages
        if m["To"] == "member@example.com" and INVITE_SUBJECT in str(m["Subject"])
    ]
    unknown = await client.get("/dashboard/invitations/not-a-token", headers=HTML)
    assert unknown.status_code == 400
    assert "not valid" in unknown.text


async def test_who_may_invite_and_revoke(client: httpx.AsyncClient, database: Database) -> None:
    owner = await signup(client)
    team = owner.team_id
    admin = await signup_into(client, database, team, Role.ADMIN)
    member = await signup_into(client, database, team, Role.MEMBER)

    assert (await invite(client, member, team, "a@example.com")).status_code == 403
    only_owners = await invite(client, admin, team, "b@example.com", "owner")
    assert only_owners.status_code == 403
    assert "owner role" in only_owners.json()["error"]
    assert (await invite(client, admin, team, "c@example.com", "admin")).status_code == 201
    by_owner = await invite(client, owner, team, "d@example.com", "owner")
    assert by_owner.status_code == 201
    # Revoking an invitation to become owner is the owners' alone, like issuing it.
    revoke_owner = f"/api/teams/{team}/invitations/{by_owner.json()['id']}"
    assert (await client.delete(revoke_owner, headers=admin.headers)).status_code == 403
    # Nor by inviting the same address again, which would supersede it.
    superseding = await invite(client, admin, team, "d@example.com", "member")
    assert superseding.status_code == 403
    assert "owner role" in superseding.json()["error"]
    pending = await client.get(f"/api/teams/{team}/invitations", headers=owner.headers)
    assert sorted((i["email"], i["role"]) for i in pending.json() if i["status"] == "pending") == [
        ("c@example.com", "admin"),
        ("d@example.com", "owner"),
    ]
    assert (await client.delete(revoke_owner, headers=owner.headers)).status_code == 204
    # Superseding an invitation withdraws it on the audit trail, as revoking does.
    again = await invite(client, owner, team, "c@example.com", "member")
    assert again.status_code == 201
    trail = await client.get(
        "/api/audit", params={"action": "invitation.revoke"}, headers=owner.headers
    )
    assert sorted(event["detail"] for event in trail.json()["events"]) == [
        "Invitation of c@example.com (admin) superseded by a new invitation.",
        "Invitation of d@example.com (owner) withdrawn.",
    ]
    missing = await client.delete(f"/api/teams/{team}/invitations/nope", headers=owner.headers)
    assert missing.status_code == 404
    bad = await client.post(
        f"/api/teams/{team}/invitations",
        json={"email": "not an address", "role": "member"},
        headers=owner.headers,
    )
    assert bad.status_code == 422
    # Another team's invitations are invisible, even by id.
    stranger = await signup(client)
    listed = await client.get(f"/api/teams/{team}/invitations", headers=stranger.headers)
    assert listed.status_code == 404
    cross = await client.delete(
        f"/api/teams/{stranger.team_id}/invitations/{by_owner.json()['id']}",
        headers=stranger.headers,
    )
    assert cross.status_code == 404
