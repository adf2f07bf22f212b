"""Email verification: a single-use link proves that a person receives mail at their address.

Signup sends the link. In production, workflow emails go only to verified addresses
(:func:`signoff.auth.repository.decider_recipients`), so a mistyped address at signup never
receives plans and outputs meant for the team. Accepting an invitation also verifies the
address, since the invitation link itself was delivered to it.

This module depends on nothing in :mod:`signoff.auth`, so that the signup service can use it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from signoff.approvals.tokens import LinkError
from signoff.auth import repository
from signoff.config import Settings
from signoff.errors import Conflict, ErrorCode, TooManyRequests
from signoff.kit.clock import utc_now
from signoff.kit.ids import hash_token, new_token
from signoff.mail import service as mail
from signoff.models import EmailVerification, User

VERIFICATION_TTL = timedelta(days=7)

# Emails a person did not ask for are what a mail provider punishes: whoever can trigger a send
# (a resend button, an invitation form) may send one address at most this many per window.
SEND_LIMIT = 5
SEND_WINDOW = timedelta(hours=1)


def check_send_limit(sent_at: Sequence[datetime], what: str) -> None:
    """Refuse (429) a send when ``sent_at`` already holds :data:`SEND_LIMIT` sends in the window."""
    if len(sent_at) < SEND_LIMIT:
        return
    retry_at = sorted(sent_at)[-SEND_LIMIT] + SEND_WINDOW
    raise TooManyRequests(
        f"Too many {what} were sent to this address in the last hour; try again later.",
        retry_after_seconds=int((retry_at - utc_now()).total_seconds()) + 1,
    )


def verify_url(settings: Settings, token: str) -> str:
    return f"{settings.public_base_url}/dashboard/verify-email/{token}"


async def send_verification_email(session: AsyncSession, settings: Settings, user: User) -> str:
    """Write a fresh verification link for the user's address to the outbox; return the address.

    Earlier links stay valid until they expire: whichever email the person opens works.
    """
    sent = await repository.verification_times_since(session, user.id, utc_now() - SEND_WINDOW)
    check_send_limit(sent, "verification emails")
    token = new_token()
    session.add(
        EmailVerification(
            user_id=user.id,
            email=user.email,
            token_hash=hash_token(token),
            expires_at=utc_now() + VERIFICATION_TTL,
        )
    )
    await mail.enqueue(
        session,
        settings,
        kind="verify_email",
        to=user.email,
        subject="Verify your email address for Signoff",
        template="verify_email",
        context={
            "recipient_name": user.name,
            "email": user.email,
            "verify_url": verify_url(settings, token),
            "expires_days": VERIFICATION_TTL.days,
        },
        team_id=None,
    )
    return user.email


async def check_link(session: AsyncSession, token: str) -> tuple[EmailVerification, User]:
    """The verification and its user if the link can still verify; else why not (LinkError).

    A used link of an address that is verified is fine (opening it twice is harmless); the
    caller shows "already verified".
    """
    verification = await repository.get_verification_by_token_hash(session, hash_token(token))
    user = await session.get(User, verification.user_id) if verification else None
    if verification is None or user is None:
        raise LinkError("This verification link is not valid.", code=ErrorCode.VERIFICATION_INVALID)
    if user.email != verification.email:
        raise LinkError(
            "This link was sent to an address that is no longer the account's address.",
            code=ErrorCode.VERIFICATION_INVALID,
        )
    if user.email_verified_at is None and verification.expires_at <= utc_now():
        raise LinkError(
            "This verification link has expired; ask for a new one below.",
            code=ErrorCode.VERIFICATION_EXPIRED,
        )
    return verification, user


async def verify(session: AsyncSession, token: str) -> User:
    """Mark the address of the link's user verified (the link is used up)."""
    verification, user = await check_link(session, token)
    now = utc_now()
    if verification.used_at is None:
        verification.used_at = now
    if user.email_verified_at is None:
        user.email_verified_at = now
    await session.flush()
    return user


async def send_new_link(session: AsyncSession, settings: Settings, user: User) -> str:
    """A fresh link for an address that is not verified yet (409 once it is)."""
    if user.email_verified_at is not None:
        raise Conflict("This address is already verified.", code=ErrorCode.ALREADY_VERIFIED)
    return await send_verification_email(session, settings, user)


async def resend_for_link(session: AsyncSession, settings: Settings, token: str) -> str:
    """A fresh link for the address an expired link was sent to (the expired page's button).

    Whoever holds the old link received it at that address, so mailing it again is safe.
    """
    verification = await repository.get_verification_by_token_hash(session, hash_token(token))
    user = await session.get(User, verification.user_id) if verification else None
    if verification is None or user is None or user.email != verification.email:
        raise LinkError("This verification link is not valid.", code=ErrorCode.VERIFICATION_INVALID)
    return await send_new_link(session, settings, user)
