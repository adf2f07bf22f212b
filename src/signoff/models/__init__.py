"""ORM tables only, one module per aggregate. Importing this package registers every table."""

from signoff.models.auth import AuthSession, LoginThrottle, Membership, Role, Team, User
from signoff.models.base import Base

__all__ = ["AuthSession", "Base", "LoginThrottle", "Membership", "Role", "Team", "User"]
