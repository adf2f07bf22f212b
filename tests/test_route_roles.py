"""SPEC §3.1's roles table, applied to every route of the application.

``RULES`` maps each (method, path) to the least role it needs, and ``PUBLIC`` lists the routes
that need no session, each with the reason. The first test fails as soon as a route exists that
neither names (or a rule names a route that no longer exists): a new endpoint cannot ship
without a decision about who may call it.

The second test calls every ruled route as five people: an anonymous caller (401), a user of
another team (404: another team's objects answer like missing ones), and a member, an admin
and an owner of the team (2xx, or 403 below the route's role). Routes that act in the current
team are called with ``X-Team-Id`` naming the team, so the outsider is refused the team rather
than shown their own. Where a route's success changes or needs a particular state (a decision
needs a paused run; archiving changes a workflow; leaving changes the team), every call that
should succeed gets fresh state, so no call changes what a later one should get; refused
calls act on shared objects that no refused call changes.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from sqlalchemy import select, update

from signoff.app import create_app
from signoff.db import Database
from signoff.kit.clock import utc_now
from signoff.models import (
    Membership,
    Role,
    Run,
    RunStatus,
    Team,
    User,
    Workflow,
    WorkflowStatus,
)
from tests.support.accounts import PASSWORD, Account, signup
from tests.support.settings import make_settings
from tests.support.waiting import wait_until
from tests.support.workflows import GOAL, create_workflow, start_run

LINK = "email link: the signed or emailed token is the credential (SPEC §6), no session needed"
PAGE = "dashboard HTML page: without a session it sends the browser to sign in"
FORM = (
    "dashboard form: the API route's service as the page's user (the same role rule), "
    "after the CSRF check; without a session it sends the browser to sign in (tests/dashboard)"
)
STREAM = "dashboard live updates: needs a session; another team's workflow is 404 (test_live.py)"

PUBLIC: dict[tuple[str, str], str] = {
    ("GET", "/docs"): "API documentation page; serves no data",
    ("GET", "/redoc"): "API documentation page; serves no data",
    ("GET", "/healthz"): "liveness probe for load balancers; serves no data",
    ("GET", "/readyz"): "readiness probe: names which dependency is down, serves no data",
    ("GET", "/metrics"): (
        "Prometheus scrape: 404 unless SIGNOFF_METRICS_TOKEN is set, then that bearer token "
        "(tests/metrics); no session, no team data"
    ),
    ("GET", "/"): "redirects to the dashboard",
    ("POST", "/api/auth/signup"): "creates an account: the caller has none yet",
    ("POST", "/api/auth/login"): "turns credentials into a session",
    ("GET", "/dashboard/login"): "the sign-in page",
    ("POST", "/dashboard/login"): "the sign-in form",
    ("GET", "/dashboard"): PAGE,
    ("GET", "/dashboard/workflows/{workflow_id}"): PAGE,
    ("GET", "/dashboard/signup"): "the sign-up page",
    ("POST", "/dashboard/signup"): "creates an account: the caller has none yet",
    ("POST", "/dashboard/logout"): FORM,
    ("GET", "/dashboard/events"): STREAM,
    ("GET", "/dashboard/inbox"): PAGE + "; only the current team's decisions, for its admins",
    ("GET", "/dashboard/inbox/events"): STREAM,
    ("GET", "/dashboard/schedule-preview"): PAGE + "; a cron expression in words, no team data",
    ("GET", "/dashboard/workflows/new"): PAGE,
    ("POST", "/dashboard/workflows"): FORM,
    ("GET", "/dashboard/workflows/{workflow_id}/events"): STREAM,
    ("GET", "/dashboard/workflows/{workflow_id}/plan"): PAGE + "; editing needs an admin",
    ("POST", "/dashboard/workflows/{workflow_id}/plan"): FORM,
    ("POST", "/dashboard/workflows/{workflow_id}/activate"): FORM,
    ("POST", "/dashboard/workflows/{workflow_id}/archive"): FORM,
    ("POST", "/dashboard/workflows/{workflow_id}/schedule"): FORM,
    ("POST", "/dashboard/workflows/{workflow_id}/run"): FORM,
    ("POST", "/dashboard/workflows/{workflow_id}/approval-email"): FORM,
    ("GET", "/dashboard/workflows/{workflow_id}/runs/{run_id}"): PAGE,
    ("POST", "/dashboard/workflows/{workflow_id}/runs/{run_id}/decision"): FORM,
    ("POST", "/dashboard/workflows/{workflow_id}/runs/{run_id}/stop"): FORM,
    ("POST", "/dashboard/workflows/{workflow_id}/runs/{run_id}/approval-email"): FORM,
    ("POST", "/dashboard/workflows/{workflow_id}/runs/{run_id}/rerun"): FORM,
    ("POST", "/dashboard/workflows/{workflow_id}/runs/{run_id}/retry"): FORM,
    ("GET", "/dashboard/runs"): PAGE,
    ("GET", "/dashboard/team"): PAGE,
    ("POST", "/dashboard/team/invitations"): FORM,
    ("POST", "/dashboard/team/invitations/{invitation_id}/revoke"): FORM,
    ("POST", "/dashboard/team/members/{user_id}/role"): FORM,
    ("POST", "/dashboard/team/members/{user_id}/remove"): FORM,
    ("POST", "/dashboard/team/leave"): FORM,
    ("POST", "/dashboard/team/switch"): FORM + "; only to a team the caller is in (else 404)",
    ("GET", "/dashboard/memory"): PAGE,
    ("POST", "/dashboard/memory/core"): FORM,
    ("GET", "/dashboard/mailbox"): PAGE + "; only without SMTP outside production (else 404)",
    ("HEAD", "/api/workflows/{workflow_id}/approve"): LINK,
    ("GET", "/api/workflows/{workflow_id}/approve"): LINK,
    ("POST", "/api/workflows/{workflow_id}/approve"): LINK,
    ("HEAD", "/api/workflows/resume"): LINK,
    ("GET", "/api/workflows/resume"): LINK,
    ("POST", "/api/workflows/resume"): LINK,
    ("GET", "/api/workflows/resume/image"): LINK + "; the image a step link asks to approve",
    ("GET", "/dashboard/invitations/{token}"): LINK,
    ("POST", "/dashboard/invitations/{token}/accept"): LINK + "; joining needs the invited account",
    ("POST", "/dashboard/invitations/{token}/signup"): LINK,
    ("POST", "/dashboard/invitations/{token}/switch-account"): LINK + "; only signs out",
    ("GET", "/dashboard/verify-email/{token}"): LINK,
    ("POST", "/dashboard/verify-email/{token}"): LINK,
    ("POST", "/dashboard/verify-email/{token}/resend"): LINK,
}

USER = "user"  # any signed-in person: the route is about their own account, not a team
Minimum = Role | Literal["user"]


@dataclass(frozen=True)
class Call:
    path: str
    json: Any = None
    token: str | None = None  # instead of the caller's own session token


Prepare = Callable[["World", Account | None], Awaitable[Call]]


@dataclass(frozen=True)
class Rule:
    """Who may call a route, and how to call it.

    ``call`` acts on the world's shared objects, which are in a state where the call would
    succeed, so a refusal is about the role alone. A caller expected to succeed gets
    ``fresh`` instead, when the route changes or uses up what it acts on.
    """

    minimum: Minimum
    call: Prepare
    ok: int = 200
    current_team: bool = False  # acts in the current team (list and create routes)
    fresh: Prepare | None = None


_unique = itertools.count()


@dataclass
class World:
    """Team A (owner, admin, member), an outsider with a team of their own, and the objects
    the routes need: a draft, an active workflow whose first run waits for approval, one of
    its assets, and a memory entry."""

    client: httpx.AsyncClient
    database: Database
    owner: Account
    admin: Account
    member: Account
    outsider: Account
    draft: dict[str, Any] = field(default_factory=dict)  # the create response
    active_id: str = ""
    run_id: int = 0
    asset_id: str = ""
    invitation_id: str = ""

    @property
    def team_id(self) -> str:
        return self.owner.team_id

    async def post(self, path: str, json: Any = None) -> dict[str, Any]:
        response = await self.client.post(path, json=json, headers=self.owner.headers)
        assert response.status_code in (200, 201), response.text
        body: dict[str, Any] = response.json()
        return body

    async def new_draft(self) -> dict[str, Any]:
        return await create_workflow(self.client, self.owner)

    async def running(self) -> tuple[str, int]:
        """A fresh active workflow and its first run (active: running or paused)."""
        return await start_run(self.client, self.owner)

    async def paused(self) -> tuple[str, int]:
        """A fresh run waiting for approval. Polled in the database, not through the API:
        several runs pause at once here, and polling their full detail costs more CPU than
        the runs themselves."""
        workflow_id, run_id = await self.running()

        async def waiting() -> bool:
            async with self.database.read() as session:
                status = await session.scalar(select(Run.status).where(Run.id == run_id))
            assert status in (RunStatus.RUNNING, RunStatus.AWAITING_APPROVAL), status
            return status == RunStatus.AWAITING_APPROVAL

        await wait_until(waiting, f"run {run_id} to pause", timeout=30, interval=0.05)
        return workflow_id, run_id

    async def idle(self) -> str:
        """A fresh active workflow that never ran: a new draft made active directly, since
        activating through the API starts a run (and stopping it would cost another)."""
        workflow_id: str = (await self.new_draft())["workflowId"]
        async with self.database.write() as session:
            await session.execute(
                update(Workflow)
                .where(Workflow.id == workflow_id)
                .values(status=WorkflowStatus.ACTIVE, activated_at=utc_now())
            )
        return workflow_id

    async def user(self) -> str:
        async with self.database.write() as session:
            user = User(email=f"extra{next(_unique)}@example.com", password_hash="unused")
            session.add(user)
            await session.flush()
            return user.id

    async def new_member(self) -> str:
        user_id = await self.user()
        async with self.database.write() as session:
            session.add(Membership(team_id=self.team_id, user_id=user_id, role=Role.MEMBER))
        return user_id

    async def team_with(self, caller: Account | None) -> str:
        """A fresh team with another owner, where the caller (unless an outsider) has their
        role in team A: leaving it changes nothing else."""
        co_owner = await self.user()
        roles = [(self.owner, Role.OWNER), (self.admin, Role.ADMIN), (self.member, Role.MEMBER)]
        role = next((role for account, role in roles if account is caller), None)
        async with self.database.write() as session:
            team = Team(name="Fresh team")
            session.add(team)
            await session.flush()
            session.add(Membership(team_id=team.id, user_id=co_owner, role=Role.OWNER))
            if role is not None:
                session.add(Membership(team_id=team.id, user_id=caller.user_id, role=role))
            return team.id

    async def invitation(self) -> str:
        body = await self.post(
            f"/api/teams/{self.team_id}/invitations",
            {"email": f"invitee{next(_unique)}@example.com", "role": "member"},
        )
        invitation_id: str = body["id"]
        return invitation_id

    async def memory_key(self) -> str:
        key = f"note-{next(_unique)}"
        response = await self.client.put(
            f"/api/memory/{key}", json={"value": "Temporary."}, headers=self.owner.headers
        )
        assert response.status_code == 200, response.text
        return key

    async def fresh_session(self, caller: Account | None) -> str | None:
        if caller is None:
            return None
        response = await self.client.post(
            "/api/auth/login", json={"email": caller.email, "password": PASSWORD}
        )
        assert response.status_code == 200, response.text
        self.client.cookies.clear()
        token: str = response.json()["token"]
        return token


def static(path: str, json: Any = None) -> Prepare:
    """A call on the world's shared objects, which no call changes."""

    async def prepare(world: World, _caller: Account | None) -> Call:
        return Call(
            path.format(
                team=world.team_id,
                draft=world.draft["workflowId"],
                active=world.active_id,
                run=world.run_id,
                asset=world.asset_id,
                member=world.member.user_id,
                invitation=world.invitation_id,
            ),
            json,
        )

    return prepare


def _edit_steps(draft: dict[str, Any]) -> Call:
    # Its own first step again: a valid edit of any draft.
    step = {key: draft["steps"][0][key] for key in ("stepIndex", "description", "toolName")}
    return Call(f"/api/workflows/{draft['workflowId']}/steps", {"steps": [step]})


async def _edit_shared_steps(world: World, _caller: Account | None) -> Call:
    return _edit_steps(world.draft)


async def _edit_fresh_steps(world: World, _caller: Account | None) -> Call:
    return _edit_steps(await world.new_draft())


def on_new_draft(suffix: str, json: Any = None) -> Prepare:
    async def prepare(world: World, _caller: Account | None) -> Call:
        return Call(f"/api/workflows/{(await world.new_draft())['workflowId']}{suffix}", json)

    return prepare


async def _idle_workflow_run(world: World, _caller: Account | None) -> Call:
    return Call(f"/api/workflows/{await world.idle()}/run")


async def _stop_new_run(world: World, _caller: Account | None) -> Call:
    workflow_id, run_id = await world.running()
    return Call(f"/api/workflows/{workflow_id}/runs/{run_id}/stop")


async def _stopped_run(world: World) -> str:
    workflow_id, run_id = await world.running()
    await world.post(f"/api/workflows/{workflow_id}/runs/{run_id}/stop")
    return f"/api/workflows/{workflow_id}/runs/{run_id}"


async def _rerun_new_run(world: World, _caller: Account | None) -> Call:
    return Call(f"{await _stopped_run(world)}/rerun", {"fromStepIndex": 0})


async def _retry_new_run(world: World, _caller: Account | None) -> Call:
    return Call(f"{await _stopped_run(world)}/retry")


async def _decide_new_run(world: World, _caller: Account | None) -> Call:
    workflow_id, run_id = await world.paused()
    return Call(f"/api/workflows/{workflow_id}/runs/{run_id}/decision", {"action": "approve"})


async def _delete_new_memory(world: World, _caller: Account | None) -> Call:
    return Call(f"/api/memory/{await world.memory_key()}")


async def _change_new_member(world: World, _caller: Account | None) -> Call:
    return Call(f"/api/teams/{world.team_id}/members/{await world.new_member()}", {"role": "admin"})


async def _remove_new_member(world: World, _caller: Account | None) -> Call:
    return Call(f"/api/teams/{world.team_id}/members/{await world.new_member()}")


async def _leave_new_team(world: World, caller: Account | None) -> Call:
    return Call(f"/api/teams/{await world.team_with(caller)}/leave")


async def _invite(world: World, _caller: Account | None) -> Call:
    email = f"invitee{next(_unique)}@example.com"
    return Call(f"/api/teams/{world.team_id}/invitations", {"email": email, "role": "member"})


async def _revoke_new_invitation(world: World, _caller: Account | None) -> Call:
    return Call(f"/api/teams/{world.team_id}/invitations/{await world.invitation()}")


async def _logout_new_session(world: World, caller: Account | None) -> Call:
    return Call("/api/auth/logout", token=await world.fresh_session(caller))


W = "/api/workflows/{workflow_id}"
R = W + "/runs/{run_id}"
T = "/api/teams/{team_id}"
M = Role.MEMBER
A = Role.ADMIN
SCHEDULE = "0 9 * * MON"

RULES: dict[tuple[str, str], Rule] = {
    # accounts
    ("POST", "/api/auth/logout"): Rule(
        USER, static("/api/auth/logout"), ok=204, fresh=_logout_new_session
    ),
    ("GET", "/api/me"): Rule(USER, static("/api/me")),
    ("POST", "/api/me/verification-email"): Rule(USER, static("/api/me/verification-email")),
    # workflows: view, create, run, stop for members; edit, decide, archive for admins
    ("POST", "/api/workflows"): Rule(
        M, static("/api/workflows", {"goal": GOAL}), ok=201, current_team=True
    ),
    ("GET", "/api/workflows"): Rule(M, static("/api/workflows"), current_team=True),
    # Members may ask; their list is empty (only owners and admins decide).
    ("GET", "/api/approvals"): Rule(M, static("/api/approvals"), current_team=True),
    ("GET", W): Rule(M, static("/api/workflows/{draft}")),
    ("POST", W + "/steps"): Rule(A, _edit_shared_steps, fresh=_edit_fresh_steps),
    ("POST", W + "/activate"): Rule(
        A, static("/api/workflows/{draft}/activate"), fresh=on_new_draft("/activate")
    ),
    ("POST", W + "/archive"): Rule(
        A, static("/api/workflows/{draft}/archive"), fresh=on_new_draft("/archive")
    ),
    ("POST", W + "/approval-email"): Rule(M, static("/api/workflows/{draft}/approval-email")),
    ("PATCH", W): Rule(
        A,
        static("/api/workflows/{draft}", {"schedule": SCHEDULE}),
        fresh=on_new_draft("", {"schedule": SCHEDULE}),
    ),
    ("GET", W + "/fires"): Rule(M, static("/api/workflows/{active}/fires")),
    # The shared active workflow has a run in progress: only the refused callers use it.
    ("POST", W + "/run"): Rule(
        M, static("/api/workflows/{active}/run"), ok=201, fresh=_idle_workflow_run
    ),
    ("GET", W + "/runs"): Rule(M, static("/api/workflows/{active}/runs")),
    ("GET", R): Rule(M, static("/api/workflows/{active}/runs/{run}")),
    ("POST", R + "/stop"): Rule(
        M, static("/api/workflows/{active}/runs/{run}/stop"), fresh=_stop_new_run
    ),
    ("POST", R + "/decision"): Rule(
        A,
        static("/api/workflows/{active}/runs/{run}/decision", {"action": "approve"}),
        fresh=_decide_new_run,
    ),
    ("POST", R + "/approval-email"): Rule(
        M, static("/api/workflows/{active}/runs/{run}/approval-email")
    ),
    ("GET", "/api/runs"): Rule(M, static("/api/runs"), current_team=True),
    # Only an ended run can be rerun: callers expected to succeed get a stopped one.
    ("POST", R + "/rerun"): Rule(
        M,
        static("/api/workflows/{active}/runs/{run}/rerun", {"fromStepIndex": 0}),
        ok=201,
        fresh=_rerun_new_run,
    ),
    ("POST", R + "/retry"): Rule(
        M, static("/api/workflows/{active}/runs/{run}/retry"), ok=201, fresh=_retry_new_run
    ),
    ("GET", "/api/assets"): Rule(M, static("/api/assets"), current_team=True),
    ("GET", "/api/assets/{asset_id}/content"): Rule(M, static("/api/assets/{asset}/content")),
    # team memory: members read, admins write
    ("GET", "/api/audit"): Rule(A, static("/api/audit"), current_team=True),
    ("GET", "/api/memory"): Rule(M, static("/api/memory"), current_team=True),
    ("GET", "/api/memory/{key}"): Rule(M, static("/api/memory/core"), current_team=True),
    ("PUT", "/api/memory/{key}"): Rule(
        A, static("/api/memory/core", {"value": "Warm, plain words."}), current_team=True
    ),
    ("DELETE", "/api/memory/{key}"): Rule(
        A, static("/api/memory/core"), ok=204, current_team=True, fresh=_delete_new_memory
    ),
    # members and invitations: admins (the owner-only cases depend on the target's role and
    # are shown in tests/teams)
    ("GET", T + "/members"): Rule(A, static("/api/teams/{team}/members")),
    ("PATCH", T + "/members/{user_id}"): Rule(
        A,
        static("/api/teams/{team}/members/{member}", {"role": "admin"}),
        fresh=_change_new_member,
    ),
    ("DELETE", T + "/members/{user_id}"): Rule(
        A, static("/api/teams/{team}/members/{member}"), ok=204, fresh=_remove_new_member
    ),
    ("POST", T + "/leave"): Rule(
        M, static("/api/teams/{team}/leave"), ok=204, fresh=_leave_new_team
    ),
    ("POST", T + "/invitations"): Rule(A, _invite, ok=201),
    ("GET", T + "/invitations"): Rule(A, static("/api/teams/{team}/invitations")),
    ("DELETE", T + "/invitations/{invitation_id}"): Rule(
        A,
        static("/api/teams/{team}/invitations/{invitation}"),
        ok=204,
        fresh=_revoke_new_invitation,
    ),
}


def app_routes(app: FastAPI) -> set[tuple[str, str]]:
    """Every (method, path) the application answers with an endpoint of ours (APIRoute):
    not the OpenAPI document or the static file mounts."""
    routes = set()
    for context in iter_route_contexts(app.routes):
        if isinstance(context.original_route, APIRoute):
            assert context.path is not None
            routes.update((method, context.path) for method in context.methods or ())
    return routes


def test_every_route_has_a_rule(tmp_path: Path) -> None:
    app = create_app(make_settings(tmp_path))
    routes = app_routes(app)
    assert not set(PUBLIC) & set(RULES), "a route is both public and ruled"
    unruled = sorted(routes - set(PUBLIC) - set(RULES))
    assert not unruled, f"routes without a rule in tests/test_route_roles.py: {unruled}"
    stale = sorted((set(PUBLIC) | set(RULES)) - routes)
    assert not stale, f"rules for routes that no longer exist: {stale}"


async def build_world(client: httpx.AsyncClient, database: Database) -> World:
    owner, admin, member, outsider = [await signup(client) for _ in range(4)]
    async with database.write() as session:
        session.add(Membership(team_id=owner.team_id, user_id=admin.user_id, role=Role.ADMIN))
        session.add(Membership(team_id=owner.team_id, user_id=member.user_id, role=Role.MEMBER))
    put = await client.put(
        "/api/memory/core", json={"value": "Our brand voice."}, headers=owner.headers
    )
    assert put.status_code == 200
    return World(client, database, owner, admin, member, outsider)


async def add_shared_objects(world: World) -> None:
    async def active() -> None:
        world.active_id, world.run_id = await world.paused()
        assets = await world.client.get(
            "/api/assets", params={"runId": world.run_id}, headers=world.owner.headers
        )
        world.asset_id = assets.json()[0]["id"]

    async def draft() -> None:
        world.draft = await world.new_draft()

    async def invitation() -> None:
        world.invitation_id = await world.invitation()

    await asyncio.gather(active(), draft(), invitation())


def expected(rule: Rule, caller: str) -> int:
    if caller == "anonymous":
        return 401
    if rule.minimum == USER:
        return rule.ok
    if caller == "outsider":
        return 404
    role = {"member": Role.MEMBER, "admin": Role.ADMIN, "owner": Role.OWNER}[caller]
    return rule.ok if role.at_least(rule.minimum) else 403


@pytest.mark.postgres
async def test_every_route_answers_each_role_as_the_spec_says(
    client: httpx.AsyncClient, database: Database
) -> None:
    world = await build_world(client, database)
    callers: dict[str, Account | None] = {
        "anonymous": None,
        "outsider": world.outsider,
        "member": world.member,
        "admin": world.admin,
        "owner": world.owner,
    }
    # The state of every call that should succeed, built at once and beside the shared
    # objects: the runs that decisions and stops need pause side by side.
    wanted: dict[tuple[tuple[str, str], str], Awaitable[Call]] = {
        (route, name): rule.fresh(world, account)
        for route, rule in RULES.items()
        for name, account in callers.items()
        if rule.fresh is not None and expected(rule, name) == rule.ok
    }
    _, fresh_calls = await asyncio.gather(
        add_shared_objects(world), asyncio.gather(*wanted.values())
    )
    fresh = dict(zip(wanted, fresh_calls, strict=True))
    mismatches = []
    for (method, path), rule in RULES.items():
        for name, account in callers.items():
            call = fresh.get(((method, path), name)) or await rule.call(world, account)
            headers = {}
            token = call.token or (account.token if account else None)
            if token:
                headers["Authorization"] = f"Bearer {token}"
            if rule.current_team:
                headers["X-Team-Id"] = world.team_id
            client.cookies.clear()  # the session travels in the header, or not at all
            response = await client.request(method, call.path, json=call.json, headers=headers)
            want = expected(rule, name)
            if response.status_code != want:
                mismatches.append(
                    f"{method} {path} as {name}: {response.status_code}, expected {want}: "
                    f"{response.text[:200]}"
                )
    assert not mismatches, "\n".join(mismatches)
