"""Identifiers and secrets."""

from __future__ import annotations

import hashlib
import secrets
import uuid


def new_id() -> str:
    """A new random string id for a row (UUID4, hyphenated)."""
    return str(uuid.uuid4())


def new_token() -> str:
    """A new random bearer secret: 32 bytes of entropy, URL-safe."""
    return secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """What is stored for a bearer secret: its SHA-256, so a database leak reveals no token."""
    return hashlib.sha256(token.encode()).hexdigest()
