"""ORM tables only, one module per aggregate. Importing this package registers every table."""

from signoff.models.audit import AuditEvent
from signoff.models.auth import AuthSession, LoginThrottle, Membership, Role, Team, User
from signoff.models.base import Base
from signoff.models.budgets import PlanDraft
from signoff.models.mail import MailStatus, OutboxMail
from signoff.models.memory import CORE_KEY, MemoryEntry
from signoff.models.runs import (
    ACTIVE_RUN_STATUSES,
    Asset,
    AssetStatus,
    Conversation,
    ConversationMessage,
    Run,
    RunStatus,
    RunStep,
    RunTrigger,
    StepStatus,
)
from signoff.models.scheduling import FireOutcome, ScheduleFire
from signoff.models.teams import EmailVerification, Invitation
from signoff.models.workflows import LinkDecision, Workflow, WorkflowStatus, WorkflowStep

__all__ = [
    "ACTIVE_RUN_STATUSES",
    "CORE_KEY",
    "Asset",
    "AssetStatus",
    "AuditEvent",
    "AuthSession",
    "Base",
    "Conversation",
    "ConversationMessage",
    "EmailVerification",
    "FireOutcome",
    "Invitation",
    "LinkDecision",
    "LoginThrottle",
    "MailStatus",
    "Membership",
    "MemoryEntry",
    "OutboxMail",
    "PlanDraft",
    "Role",
    "Run",
    "RunStatus",
    "RunStep",
    "RunTrigger",
    "ScheduleFire",
    "StepStatus",
    "Team",
    "User",
    "Workflow",
    "WorkflowStatus",
    "WorkflowStep",
]
