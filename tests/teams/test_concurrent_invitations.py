"""An invitation revoked while it is being accepted (PostgreSQL, READ COMMITTED): one of the two
wins, never both; the admin is not told a link was withdrawn when the person has joined."""

from __future__ import annotations

from datetime import timedelta

import pytest

from signoff.auth import service as auth_service
from signoff.auth.service import AuthContext, TeamRole
from signoff.config import Settings
from signoff.db import Database
from signoff.errors import AppError
from signoff.kit.clock import utc_now
from signoff.kit.ids import hash_token, new_id
from signoff.models import Invitation, Role, User
from signoff.teams import service as team_service
from tests.support.engine import PERSON, new_owner
from tests.support.postgres import start_until_it_waits

pytestmark = pytest.mark.postgres(only=True)  # SQLite's writes are serial: nothing interleaves


async def test_a_revoke_waits_for_an_accept_in_progress_and_is_refused(
    database: Database, settings: Settings
) -> None:
    email = f"{new_id()}@example.com"
    async with database.write() as session:
        owner, team = await new_owner(session, settings)
        invitee = await auth_service.create_user(
            session, settings, email=email, password_hash="not-a-real-hash", name="Invitee"
        )
        invitation = Invitation(
            team_id=team.id,
            email=email,
            role=Role.MEMBER,
            token_hash=hash_token(new_id()),
            invited_by=owner.id,
            expires_at=utc_now() + timedelta(days=7),
        )
        session.add(invitation)
    admin = AuthContext(
        user_id=owner.id,
        email=owner.email,
        session_id="a-session",
        teams=(TeamRole(team.id, team.name, Role.OWNER),),
        current_team_id=team.id,
    )

    async def revoke() -> str:
        try:
            async with database.write() as session:
                await team_service.revoke(session, admin, PERSON, team.id, invitation.id)
        except AppError as error:
            return error.error_code
        return "revoked"

    async with database.write() as accepting:
        accepted = await accepting.get(Invitation, invitation.id)
        user = await accepting.get(User, invitee.id)
        assert accepted is not None
        assert user is not None
        await team_service.accept(accepting, accepted, user, user_agent=None)
        revoking = await start_until_it_waits(database, revoke(), "the revoke")
    assert await revoking == "invitation_used"
    async with database.read() as session:
        stored = await session.get(Invitation, invitation.id)
    assert stored is not None
    assert stored.accepted_at is not None
    assert stored.revoked_at is None
