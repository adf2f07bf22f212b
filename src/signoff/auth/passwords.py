"""Argon2id password hashing, run off the event loop (a hash costs tens of milliseconds).

The cost is a setting: production keeps argon2-cffi's recommended parameters; the test suite
lowers them so that hundreds of signups stay fast. Hashes run on threads of their own, at most
one per core: a flood of anonymous signups or sign-ins waits here, not in the thread pool that
FastAPI's other work shares, and the memory argon2 takes (64 MiB a hash) stays bounded.
"""

from __future__ import annotations

import os
from functools import cache

import anyio.to_thread
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from signoff.config import Settings

_HASHING = anyio.CapacityLimiter(os.cpu_count() or 1)


@cache
def _hasher(time_cost: int, memory_kib: int) -> PasswordHasher:
    return PasswordHasher(time_cost=time_cost, memory_cost=memory_kib)  # Argon2id by default


@cache
def _dummy_hash(time_cost: int, memory_kib: int) -> str:
    # Verified against when the account does not exist, so both paths cost the same time.
    return _hasher(time_cost, memory_kib).hash("not-a-real-password")


def _params(settings: Settings) -> tuple[int, int]:
    return settings.password_time_cost, settings.password_memory_kib


async def hash_password(settings: Settings, password: str) -> str:
    return await anyio.to_thread.run_sync(
        _hasher(*_params(settings)).hash, password, limiter=_HASHING
    )


async def verify_password(settings: Settings, password_hash: str | None, password: str) -> bool:
    params = _params(settings)

    def verify() -> bool:
        try:
            ok = _hasher(*params).verify(password_hash or _dummy_hash(*params), password)
        except (VerificationError, InvalidHashError):
            return False
        return ok and password_hash is not None

    return await anyio.to_thread.run_sync(verify, limiter=_HASHING)
