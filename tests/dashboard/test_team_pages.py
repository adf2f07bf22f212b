"""The team, memory and dev mailbox pages: who sees and may do what, CSRF, and the mailbox
showing the viewer's team's emails only, with working links."""

from __future__ import annotations

import html
import re
from dataclasses import replace
from typing import Any

import httpx
import pytest
from sqlalchemy import delete, select

from signoff.config import Settings
from signoff.dashboard.team_pages import MAILBOX_PAGE_SIZE, linkify
from signoff.db import Database
from signoff.mail import service as mail_service
from signoff.models import Invitation, Membership, MemoryEntry, Role
from tests.support.accounts import HTML, Account, as_browser, join, roles, signup, signup_into
from tests.support.pages import csrf_of, open_page, post_form
from tests.support.smtp import FakeSmtpServer

pytestmark = pytest.mark.postgres


async def newcomer(
    client: httpx.AsyncClient, database: Database, team_id: str, role: Role
) -> Account:
    """Someone in the team and no other, as after joining through an invitation link: the
    dashboard shows a person's first team."""
    account = await signup_into(client, database, team_id, role)
    async with database.write() as session:
        await session.execute(
            delete(Membership).where(
                Membership.team_id == account.team_id, Membership.user_id == account.user_id
            )
        )
    return replace(account, team_id=team_id)


async def invitations(database: Database, team_id: str) -> list[Invitation]:
    async with database.read() as session:
        rows = await session.scalars(select(Invitation).where(Invitation.team_id == team_id))
        return list(rows)


async def core_of(database: Database, team_id: str) -> str | None:
    async with database.read() as session:
        entry = await session.get(MemoryEntry, (team_id, "core"))
        return entry.value if entry else None


async def test_pages_send_a_visitor_without_session_to_sign_in(client: httpx.AsyncClient) -> None:
    for path in ("/dashboard/team", "/dashboard/memory", "/dashboard/mailbox"):
        response = await open_page(client, None, path)
        assert response.status_code == 303
        assert response.headers["location"] == f"/dashboard/login?next={path}"
    # A form posted without a session asks to sign in first.
    response = await client.post("/dashboard/team/invitations", data={"email": "a@example.com"})
    assert response.status_code == 303
    assert response.headers["location"] == "/dashboard/login?next=/dashboard"


# -- team --------------------------------------------------------------------------------------


async def test_owner_sees_the_team_and_invites(
    client: httpx.AsyncClient, database: Database
) -> None:
    owner = await signup(client, name="Olivia Owner")
    member = await signup_into(client, database, owner.team_id, Role.MEMBER)

    shown = await open_page(client, owner, "/dashboard/team")
    assert shown.status_code == 200
    assert owner.email in shown.text
    assert member.email in shown.text
    assert '<label for="invite-email">Email</label>' in shown.text
    assert '<label for="invite-role">Role</label>' in shown.text
    assert ">Invite</button>" in shown.text
    assert "No pending invitations." in shown.text

    response = await post_form(
        client,
        owner,
        "/dashboard/team",
        "/dashboard/team/invitations",
        {"email": "New.Person@Example.com", "role": "admin"},
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/dashboard/team"
    [invitation] = await invitations(database, owner.team_id)
    assert (invitation.email, invitation.role) == ("new.person@example.com", Role.ADMIN)

    after = await client.get(response.headers["location"], headers=HTML)
    assert "The invitation is on its way" in after.text
    assert "new.person@example.com" in after.text
    # The same email as the API's invitation, in the team's dev mailbox.
    mailbox = await client.get("/dashboard/mailbox", headers=HTML)
    assert "Olivia Owner invited you to join" in mailbox.text


async def test_a_member_sees_the_team_but_cannot_manage_it(
    client: httpx.AsyncClient, database: Database
) -> None:
    owner = await signup(client)
    member = await newcomer(client, database, owner.team_id, Role.MEMBER)
    before = await roles(database, owner.team_id)

    shown = await open_page(client, member, "/dashboard/team")
    assert shown.status_code == 200
    assert owner.email in shown.text
    assert member.email in shown.text
    assert "Invite" not in shown.text
    assert "/members/" not in shown.text  # no role or remove forms
    assert ">Leave team</button>" in shown.text

    refused = await post_form(
        client,
        member,
        "/dashboard/team",
        "/dashboard/team/invitations",
        {"email": "friend@example.com", "role": "member"},
    )
    assert refused.status_code == 403
    assert "needs the admin role" in refused.text
    promoted = await post_form(
        client,
        member,
        "/dashboard/team",
        f"/dashboard/team/members/{member.user_id}/role",
        {"role": "owner"},
    )
    assert promoted.status_code == 403
    assert await invitations(database, owner.team_id) == []
    assert await roles(database, owner.team_id) == before


async def test_forms_without_the_csrf_token_change_nothing(
    client: httpx.AsyncClient, database: Database
) -> None:
    owner = await signup(client)
    other = await signup(client)
    member = await signup_into(client, database, owner.team_id, Role.MEMBER)
    before = await roles(database, owner.team_id)
    # Another session's token is as good as none.
    foreign_token = csrf_of((await open_page(client, other, "/dashboard/memory")).text)

    attempts: list[tuple[str, dict[str, str]]] = [
        ("/dashboard/team/invitations", {"email": "x@example.com", "role": "member"}),
        (f"/dashboard/team/members/{member.user_id}/role", {"role": "admin"}),
        (f"/dashboard/team/members/{member.user_id}/remove", {}),
        ("/dashboard/team/leave", {}),
        ("/dashboard/memory/core", {"value": "Hijacked voice"}),
    ]
    for action, data in attempts:
        missing = await post_form(client, owner, "/dashboard/team", action, data, csrf=False)
        assert missing.status_code == 403, action
        assert "did not come from Signoff" in missing.text
        page_path = "/dashboard/memory" if "memory" in action else "/dashboard/team"
        assert f'href="{page_path}">Go back</a>' in missing.text
        wrong = await client.post(action, data={**data, "csrf_token": foreign_token}, headers=HTML)
        assert wrong.status_code == 403, action

    assert await invitations(database, owner.team_id) == []
    assert await roles(database, owner.team_id) == before
    assert await core_of(database, owner.team_id) is None


async def test_owner_changes_roles_removes_and_revokes(
    client: httpx.AsyncClient, database: Database
) -> None:
    owner = await signup(client)
    team = owner.team_id
    member = await newcomer(client, database, team, Role.MEMBER)
    leaver = await newcomer(client, database, team, Role.MEMBER)
    last_one = await newcomer(client, database, team, Role.MEMBER)
    elsewhere = await signup(client)
    await join(database, elsewhere.team_id, leaver, Role.MEMBER)

    changed = await post_form(
        client, owner, "/dashboard/team", f"/dashboard/team/members/{member.user_id}/role",
        {"role": "admin"},
    )  # fmt: skip
    assert changed.headers["location"] == "/dashboard/team"
    assert (await roles(database, team))[member.user_id] == Role.ADMIN

    # The admin manages members and admins, but the owner role is the owners' alone.
    shown = await open_page(client, member, "/dashboard/team")
    assert 'value="owner"' not in shown.text
    refused = await post_form(
        client, member, "/dashboard/team", f"/dashboard/team/members/{owner.user_id}/role",
        {"role": "member"},
    )  # fmt: skip
    assert refused.status_code == 403
    assert (await roles(database, team))[owner.user_id] == Role.OWNER

    invited = await post_form(
        client, member, "/dashboard/team", "/dashboard/team/invitations",
        {"email": "maybe@example.com", "role": "member"},
    )  # fmt: skip
    assert invited.status_code == 303
    [invitation] = await invitations(database, team)
    revoked = await post_form(
        client, member, "/dashboard/team", f"/dashboard/team/invitations/{invitation.id}/revoke"
    )
    assert revoked.headers["location"] == "/dashboard/team"
    [invitation] = await invitations(database, team)
    assert invitation.revoked_at is not None
    again = await post_form(
        client, member, "/dashboard/team", f"/dashboard/team/invitations/{invitation.id}/revoke"
    )
    assert again.status_code == 409
    assert "already revoked" in again.text

    remove = f"/dashboard/team/members/{member.user_id}/remove"
    asked = await post_form(client, owner, "/dashboard/team", remove)
    assert asked.status_code == 200
    assert "Are you sure?" in asked.text
    assert "Remove member" in asked.text
    assert member.user_id in await roles(database, team)
    removed = await post_form(client, owner, "/dashboard/team", remove, {"confirmed": "1"})
    assert removed.headers["location"] == "/dashboard/team"
    assert member.user_id not in await roles(database, team)

    # A member of two teams leaves the one shown and sees the other.
    left = await post_form(client, leaver, "/dashboard/team", "/dashboard/team/leave")
    assert left.headers["location"] == "/dashboard/team"
    assert leaver.user_id not in await roles(database, team)
    assert elsewhere.email in (await client.get(left.headers["location"], headers=HTML)).text
    # Leaving one's only team says so, rather than sending them to a dashboard of no team.
    alone = await post_form(client, last_one, "/dashboard/team", "/dashboard/team/leave")
    assert alone.status_code == 200
    assert "You are not in any team now" in alone.text
    assert last_one.user_id not in await roles(database, team)

    # The last owner cannot leave: the page says why, and nothing changes.
    stays = await post_form(client, owner, "/dashboard/team", "/dashboard/team/leave")
    assert stays.status_code == 409
    assert "only owner" in stays.text
    assert await roles(database, team) == {owner.user_id: Role.OWNER}


async def test_a_bad_invitation_is_shown_with_its_reason(
    client: httpx.AsyncClient, database: Database
) -> None:
    owner = await signup(client)
    member = await signup_into(client, database, owner.team_id, Role.MEMBER)
    for data, status, reason in [
        ({"email": "not-an-address", "role": "member"}, 422, "Enter the email address"),
        ({"email": "a@example.com", "role": "boss"}, 422, "Choose a role"),
        ({"email": member.email, "role": "member"}, 409, "already a member"),
    ]:
        response = await post_form(
            client, owner, "/dashboard/team", "/dashboard/team/invitations", data
        )
        assert response.status_code == status
        assert reason in response.text
        assert 'role="alert"' in response.text
        assert f'value="{html.escape(data["email"])}"' in response.text  # kept for correcting
    assert await invitations(database, owner.team_id) == []


# -- memory ------------------------------------------------------------------------------------


async def test_admins_edit_core_memory_and_members_read_it(
    client: httpx.AsyncClient, database: Database
) -> None:
    owner = await signup(client)
    member = await newcomer(client, database, owner.team_id, Role.MEMBER)
    put = await client.put(
        "/api/memory/audience", json={"value": "Founders & <CTOs>"}, headers=owner.headers
    )
    assert put.status_code == 200

    shown = await open_page(client, owner, "/dashboard/memory")
    assert '<label for="core-memory">Core memory</label>' in shown.text
    assert ">Save</button>" in shown.text
    assert "Founders &amp; &lt;CTOs&gt;" in shown.text

    saved = await post_form(
        client, owner, "/dashboard/memory", "/dashboard/memory/core",
        {"value": "Warm, plain words.\r\nNo jargon."},
    )  # fmt: skip
    assert saved.headers["location"] == "/dashboard/memory"
    assert await core_of(database, owner.team_id) == "Warm, plain words.\nNo jargon."
    api = await client.get("/api/memory/core", headers=owner.headers)
    assert api.json()["value"] == "Warm, plain words.\nNo jargon."

    read_only = await open_page(client, member, "/dashboard/memory")
    assert read_only.status_code == 200
    assert "Warm, plain words." in read_only.text
    assert "<textarea" not in read_only.text
    assert "Core memory</label>" not in read_only.text
    # The member's valid token (from the team page's form) does not make them an admin.
    refused = await post_form(
        client, member, "/dashboard/team", "/dashboard/memory/core", {"value": "Shouty."}
    )
    assert refused.status_code == 403
    assert await core_of(database, owner.team_id) == "Warm, plain words.\nNo jargon."

    cleared = await post_form(
        client, owner, "/dashboard/memory", "/dashboard/memory/core", {"value": "  "}
    )
    assert cleared.headers["location"] == "/dashboard/memory"
    assert await core_of(database, owner.team_id) is None


# -- dev mailbox -------------------------------------------------------------------------------


async def test_the_mailbox_shows_the_viewers_team_only_with_working_links(
    client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    first = await signup(client)
    second = await signup(client)
    for inviter, email in ((first, "ann@example.com"), (second, "bob@example.com")):
        response = await client.post(
            f"/api/teams/{inviter.team_id}/invitations",
            json={"email": email},
            headers=inviter.headers,
        )
        assert response.status_code == 201

    shown = await open_page(client, first, "/dashboard/mailbox")
    assert shown.status_code == 200
    assert shown.headers["cache-control"] == "no-store"
    assert shown.headers["referrer-policy"] == "no-referrer"
    text = shown.text
    assert "To</dt><dd>ann@example.com" in text
    assert "bob@example.com" not in text
    # The viewer's own verification email (it belongs to no team), not the other person's.
    assert f"<dd>{first.email}</dd>" in text
    assert second.email not in text
    # Newest first: the invitation came after the signup's verification email.
    assert text.index("ann@example.com") < text.index(f"<dd>{first.email}</dd>")
    assert re.search(r'<h2 id="mail-\d+">Verify your email address for Signoff</h2>', text)

    links = re.findall(r'<a href="([^"]+)" rel="noreferrer">', text)
    invitation_links = [
        link
        for link in links
        if link.startswith(f"{settings.public_base_url}/dashboard/invitations/")
    ]
    assert len(invitation_links) == 1
    assert any(
        link.startswith(f"{settings.public_base_url}/dashboard/verify-email/") for link in links
    )
    # The link works: it opens the invitation for ann@example.com.
    as_browser(client, None)
    followed = await client.get(invitation_links[0], headers=HTML)
    assert followed.status_code == 200
    assert "ann@example.com" in followed.text


async def test_the_mailbox_pages_back_and_escapes_what_it_shows(
    client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    owner = await signup(client)
    async with database.write() as session:
        for number in range(MAILBOX_PAGE_SIZE + 2):
            await mail_service.enqueue(
                session,
                settings,
                kind="notice",
                to=owner.email,
                subject=f"Mail <b>{number}</b>",
                template="notice",
                context=_notice_context(number),
                team_id=owner.team_id,
            )

    first_page = await open_page(client, owner, "/dashboard/mailbox")
    subjects = re.findall(r"Mail &lt;b&gt;(\d+)&lt;/b&gt;</h2>", first_page.text)
    assert subjects[:2] == [str(MAILBOX_PAGE_SIZE + 1), str(MAILBOX_PAGE_SIZE)]
    assert len(subjects) == MAILBOX_PAGE_SIZE
    assert "<b>" not in first_page.text
    [older] = re.findall(r'href="(/dashboard/mailbox\?before=\d+)"', first_page.text)

    second_page = await client.get(older, headers=HTML)
    assert re.findall(r"Mail &lt;b&gt;(\d+)&lt;/b&gt;</h2>", second_page.text) == ["1", "0"]
    assert "Verify your email address" in second_page.text  # the signup's, oldest
    assert "?before=" not in second_page.text


def _notice_context(number: int) -> dict[str, Any]:
    return {
        "recipient_name": "",
        "heading": f"Notice {number}",
        "paragraphs": [f"See https://example.org/{number}?a=1&b=2."],
        "buttons": [],
    }


def test_linkify_escapes_text_and_links_only_web_addresses() -> None:
    body = "Open https://signoff.test/x?a=1&b=<2>. Or <script>alert(1)</script> javascript:x"
    assert str(linkify(body)) == (
        'Open <a href="https://signoff.test/x?a=1&amp;b=" rel="noreferrer">'
        "https://signoff.test/x?a=1&amp;b=</a>&lt;2&gt;. Or &lt;script&gt;alert(1)&lt;/script&gt;"
        " javascript:x"
    )


class TestWithSmtp:
    @pytest.fixture
    def settings_overrides(self, smtp_server: FakeSmtpServer) -> dict[str, Any]:
        return {"smtp_url": smtp_server.url}

    async def test_there_is_no_mailbox(self, client: httpx.AsyncClient) -> None:
        owner = await signup(client)
        response = await open_page(client, owner, "/dashboard/mailbox")
        assert response.status_code == 404
        assert "Not found" in response.text
        # Without a session it asks to sign in first, like every page.
        assert (await open_page(client, None, "/dashboard/mailbox")).status_code == 303


# -- team switcher -----------------------------------------------------------------------------


async def test_a_person_in_two_teams_switches_between_them(
    client: httpx.AsyncClient, database: Database
) -> None:
    owner = await signup(client, name="Other Owner")
    # Pia has a team of her own, shown first.
    person = await signup_into(client, database, owner.team_id, Role.MEMBER, name="Pia")
    created = await client.post(
        "/api/workflows", json={"goal": "Summarise our support tickets"}, headers=owner.headers
    )
    assert created.status_code == 201, created.text
    title = created.json()["title"]

    first = await open_page(client, person, "/dashboard")
    assert 'action="/dashboard/team/switch"' in first.text
    assert html.escape(title) not in first.text

    # A team she is not in is refused and nothing is remembered.
    stranger = await signup(client)
    refused = await post_form(
        client, person, "/dashboard", "/dashboard/team/switch", {"team_id": stranger.team_id}
    )
    assert refused.status_code == 404
    assert "signoff_team" not in client.cookies
    unsigned = await post_form(
        client,
        person,
        "/dashboard",
        "/dashboard/team/switch",
        {"team_id": owner.team_id},
        csrf=False,
    )
    assert unsigned.status_code == 403
    assert "signoff_team" not in client.cookies

    switched = await post_form(
        client, person, "/dashboard", "/dashboard/team/switch", {"team_id": owner.team_id}
    )
    assert switched.status_code == 303
    listed = await client.get("/dashboard", headers=HTML)
    assert html.escape(title) in listed.text
    assert "You are working in" in listed.text
    # Every page acts in the chosen team: its members, not her own team's.
    team = await client.get("/dashboard/team", headers=HTML)
    assert owner.email in team.text
    # A Bearer API call is not steered by the browser's choice.
    mine = await client.get("/api/workflows", headers=person.headers)
    assert mine.json() == []


async def test_after_leaving_the_last_team_one_can_still_sign_out(
    client: httpx.AsyncClient, database: Database
) -> None:
    owner = await signup(client)
    member = await newcomer(client, database, owner.team_id, Role.MEMBER)
    left = await post_form(client, member, "/dashboard/team", "/dashboard/team/leave")
    assert left.status_code == 200
    assert "You are not in any team now" in left.text

    lost = await client.get("/dashboard", headers=HTML)
    assert lost.status_code == 403
    assert "You are not in any team" in lost.text
    assert lost.text.count('name="csrf_token"') == 1  # the sign-out form's
    token = csrf_of(lost.text)
    out = await client.post("/dashboard/logout", data={"csrf_token": token}, headers=HTML)
    assert out.status_code == 303
    assert out.headers["location"] == "/dashboard/login"
    # The session is over: its token no longer works anywhere.
    me = await client.get("/api/me", headers=member.headers)
    assert me.status_code == 401


async def test_the_api_signs_out_a_person_without_a_team(
    client: httpx.AsyncClient, database: Database
) -> None:
    owner = await signup(client)
    member = await newcomer(client, database, owner.team_id, Role.MEMBER)
    client.cookies.clear()
    left = await client.post(f"/api/teams/{owner.team_id}/leave", headers=member.headers)
    assert left.status_code == 204
    assert (await client.post("/api/auth/logout", headers=member.headers)).status_code == 204
    assert (await client.get("/api/me", headers=member.headers)).status_code == 401
