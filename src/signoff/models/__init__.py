"""ORM tables only, one module per aggregate. Importing this package registers every table."""

from signoff.models.auth import AuthSession, LoginThrottle, Membership, Role, Team, User
from signoff.models.base import Base
from signoff.models.mail import MailStatus, OutboxMail
from signoff.models.memory import CORE_KEY, MemoryEntry
from signoff.models.workflows import LinkDecision, Workflow, WorkflowStatus, WorkflowStep

__all__ = [
    "CORE_KEY",
    "AuthSession",
    "Base",
    "LinkDecision",
    "LoginThrottle",
    "MailStatus",
    "Membership",
    "MemoryEntry",
    "OutboxMail",
    "Role",
    "Team",
    "User",
    "Workflow",
    "WorkflowStatus",
    "WorkflowStep",
]
