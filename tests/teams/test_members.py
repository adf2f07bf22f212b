"""Members and roles: who may change what, the last owner, leaving, and removal taking effect
at once."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from signoff.db import Database
from signoff.models import Role
from tests.support.accounts import Account, roles, signup, signup_into

pytestmark = pytest.mark.postgres


async def set_role(
    client: httpx.AsyncClient, actor: Account, team_id: str, target: Account, role: str
) -> httpx.Response:
    return await client.patch(
        f"/api/teams/{team_id}/members/{target.user_id}",
        json={"role": role},
        headers=actor.headers,
    )


async def remove(
    client: httpx.AsyncClient, actor: Account, team_id: str, target: Account
) -> httpx.Response:
    return await client.delete(
        f"/api/teams/{team_id}/members/{target.user_id}", headers=actor.headers
    )


async def test_the_last_owner_stays(client: httpx.AsyncClient, database: Database) -> None:
    owner = await signup(client)
    admin = await signup_into(client, database, owner.team_id, Role.ADMIN)
    team = owner.team_id
    before = await roles(database, team)

    demoted = await set_role(client, owner, team, owner, "admin")
    assert demoted.status_code == 409
    assert demoted.json()["code"] == "last_owner"
    assert "at least one owner" in demoted.json()["error"]
    removed = await remove(client, owner, team, owner)
    assert removed.status_code == 409
    assert removed.json()["code"] == "last_owner"
    left = await client.post(f"/api/teams/{team}/leave", headers=owner.headers)
    assert left.status_code == 409
    assert "make someone else an owner" in left.json()["error"]
    assert await roles(database, team) == before

    # With a second owner, the first may step down, and then the new one is the last.
    assert (await set_role(client, owner, team, admin, "owner")).status_code == 200
    stepped_down = await set_role(client, owner, team, owner, "member")
    assert stepped_down.status_code == 200
    assert stepped_down.json() == {
        "userId": owner.user_id,
        "email": owner.email,
        "name": "",
        "role": "member",
        "emailVerified": False,
    }
    assert (await set_role(client, admin, team, admin, "admin")).status_code == 409
    assert (await roles(database, team))[admin.user_id] == Role.OWNER


async def test_two_owners_demoting_each_other_at_once_leave_one_owner(
    client: httpx.AsyncClient, database: Database
) -> None:
    first = await signup(client)
    second = await signup_into(client, database, first.team_id, Role.OWNER)
    team = first.team_id
    responses = await asyncio.gather(
        set_role(client, first, team, second, "admin"),
        set_role(client, second, team, first, "admin"),
    )
    assert sorted(response.status_code for response in responses) == [200, 409]
    assert sorted((await roles(database, team)).values()) == [Role.ADMIN, Role.OWNER]


async def test_only_owners_touch_owners_and_members_manage_nobody(
    client: httpx.AsyncClient, database: Database
) -> None:
    owner = await signup(client)
    team = owner.team_id
    admin = await signup_into(client, database, team, Role.ADMIN)
    member = await signup_into(client, database, team, Role.MEMBER)
    other = await signup_into(client, database, team, Role.MEMBER)
    before = await roles(database, team)

    # Members: 403 for every management action, with the reason.
    for response in [
        await client.get(f"/api/teams/{team}/members", headers=member.headers),
        await set_role(client, member, team, other, "admin"),
        await remove(client, member, team, other),
    ]:
        assert response.status_code == 403
        assert "admin role" in response.json()["error"]
    # Admins: no owner may be made, unmade or removed by them.
    for response in [
        await set_role(client, admin, team, member, "owner"),
        await set_role(client, admin, team, owner, "admin"),
        await remove(client, admin, team, owner),
    ]:
        assert response.status_code == 403
        assert "owner role" in response.json()["error"]
    assert await roles(database, team) == before

    # What admins may do.
    listed = await client.get(f"/api/teams/{team}/members", headers=admin.headers)
    assert listed.status_code == 200
    assert [(row["userId"], row["role"]) for row in listed.json()] == [
        (owner.user_id, "owner"),
        (admin.user_id, "admin"),
        (member.user_id, "member"),
        (other.user_id, "member"),
    ]
    assert (await set_role(client, admin, team, other, "admin")).json()["role"] == "admin"
    assert (await set_role(client, admin, team, other, "member")).status_code == 200
    missing = await client.patch(
        f"/api/teams/{team}/members/nobody", json={"role": "admin"}, headers=admin.headers
    )
    assert missing.status_code == 404
    assert missing.json()["code"] == "member_not_found"
    invalid = await client.patch(
        f"/api/teams/{team}/members/{other.user_id}", json={"role": "boss"}, headers=owner.headers
    )
    assert invalid.status_code == 422

    # An owner may remove an owner (when another remains).
    await signup_into(client, database, team, Role.OWNER)
    co_owner = next(uid for uid, role in (await roles(database, team)).items() if uid not in before)
    gone = await client.delete(f"/api/teams/{team}/members/{co_owner}", headers=owner.headers)
    assert gone.status_code == 204
    assert co_owner not in await roles(database, team)


async def test_removal_and_leaving_take_effect_at_once(
    client: httpx.AsyncClient, database: Database
) -> None:
    owner = await signup(client)
    team = owner.team_id
    member = await signup_into(client, database, team, Role.MEMBER)
    leaver = await signup_into(client, database, team, Role.ADMIN)
    created = await client.post(
        "/api/workflows", json={"goal": "Write a weekly post"}, headers=owner.headers
    )
    workflow = f"/api/workflows/{created.json()['workflowId']}"
    as_member = member.headers_in(team)
    assert (await client.get(workflow, headers=member.headers)).status_code == 200
    assert (await client.get("/api/workflows", headers=as_member)).status_code == 200

    assert (await remove(client, owner, team, member)).status_code == 204
    # The very next request: the team's objects are gone for them, exactly like missing ones.
    assert (await client.get(workflow, headers=member.headers)).status_code == 404
    assert (await client.get("/api/workflows", headers=as_member)).status_code == 404
    assert (
        await client.post(f"{workflow}/approval-email", headers=member.headers)
    ).status_code == 404
    me = (await client.get("/api/me", headers=member.headers)).json()
    assert [t["id"] for t in me["teams"]] == [member.team_id]
    assert (await remove(client, owner, team, member)).status_code == 404

    left = await client.post(f"/api/teams/{team}/leave", headers=leaver.headers)
    assert left.status_code == 204
    assert (await client.get(workflow, headers=leaver.headers)).status_code == 404
    assert (
        await client.get(f"/api/teams/{team}/members", headers=leaver.headers)
    ).status_code == 404
    assert set(await roles(database, team)) == {owner.user_id}
