"""The one role check."""

from __future__ import annotations

import pytest

from signoff.auth.service import AuthContext, TeamRole
from signoff.errors import Forbidden, NotFound
from signoff.models import Role


def _context(role: Role) -> AuthContext:
    return AuthContext(
        user_id="u",
        email="u@example.com",
        session_id="s",
        teams=(TeamRole("t1", "Team", role),),
        current_team_id="t1",
    )


@pytest.mark.parametrize(
    ("role", "minimum", "allowed"),
    [
        (Role.MEMBER, Role.MEMBER, True),
        (Role.MEMBER, Role.ADMIN, False),
        (Role.ADMIN, Role.ADMIN, True),
        (Role.ADMIN, Role.OWNER, False),
        (Role.OWNER, Role.OWNER, True),
        (Role.OWNER, Role.MEMBER, True),
    ],
)
def test_require_role(role: Role, minimum: Role, allowed: bool) -> None:
    context = _context(role)
    if allowed:
        assert context.require_role("t1", minimum) is role
    else:
        with pytest.raises(Forbidden):
            context.require_role("t1", minimum)


def test_other_team_is_not_found_not_forbidden() -> None:
    with pytest.raises(NotFound):
        _context(Role.OWNER).require_role("t2", Role.MEMBER)
