"""Request and response bodies of the account endpoints."""

from __future__ import annotations

from datetime import datetime

from pydantic import EmailStr, Field, field_validator

from signoff.kit.schemas import ApiInput, ApiModel
from signoff.models import Role

MIN_PASSWORD_LENGTH = 8


class SignupRequest(ApiInput):
    email: EmailStr
    password: str = Field(min_length=MIN_PASSWORD_LENGTH, max_length=1024)
    name: str | None = Field(default=None, max_length=200)

    @field_validator("email")
    @classmethod
    def _lower(cls, value: str) -> str:
        return value.lower()


class LoginRequest(ApiInput):
    email: EmailStr
    password: str = Field(min_length=1, max_length=1024)

    @field_validator("email")
    @classmethod
    def _lower(cls, value: str) -> str:
        return value.lower()


class UserOut(ApiModel):
    id: str
    email: str
    name: str
    email_verified: bool
    created_at: datetime


class TeamOut(ApiModel):
    id: str
    name: str


class TeamMembershipOut(TeamOut):
    role: Role


class AuthResponse(ApiModel):
    user: UserOut
    team: TeamOut
    token: str = Field(description="Session token: send it as `Authorization: Bearer <token>`.")


class MeResponse(ApiModel):
    user: UserOut
    teams: list[TeamMembershipOut]
    current_team_id: str = Field(description="The team list and create routes act in.")
    csrf_token: str = Field(
        description="For a browser client signed in by the session cookie: send it back as "
        "the `X-CSRF-Token` header on every state-changing request (not needed with Bearer)."
    )
