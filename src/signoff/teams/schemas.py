"""Request and response bodies of the team endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import EmailStr, Field, RootModel, field_validator

from signoff.kit.schemas import ApiInput, ApiModel
from signoff.models import Role

InvitationStatus = Literal["pending", "accepted", "revoked", "expired"]


class MemberOut(ApiModel):
    user_id: str
    email: str
    name: str
    role: Role
    email_verified: bool


class RoleChange(ApiInput):
    role: Role = Field(description="Only owners may make or unmake owners.")


class InviteRequest(ApiInput):
    email: EmailStr
    role: Role = Field(
        default=Role.MEMBER, description="The role on joining; only owners may invite owners."
    )

    @field_validator("email")
    @classmethod
    def _lower(cls, value: str) -> str:
        return value.lower()


class InvitationOut(ApiModel):
    id: str
    email: str
    role: Role
    status: InvitationStatus
    invited_by: str | None = Field(description="The inviter's address, if they still exist.")
    created_at: datetime
    expires_at: datetime
    accepted_at: datetime | None
    revoked_at: datetime | None


class InvitationSent(InvitationOut):
    message: str


class MemberList(RootModel[list[MemberOut]]):
    """A team's members, oldest member first."""


class InvitationList(RootModel[list[InvitationOut]]):
    """A team's invitations, newest first."""
