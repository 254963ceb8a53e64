"""User passwords: argon2id with the RFC 9106 low-memory profile (t=3, m=64 MiB, p=4)."""

from __future__ import annotations

import asyncio

from argon2 import PasswordHasher
from argon2.profiles import RFC_9106_LOW_MEMORY

_hasher = PasswordHasher.from_parameters(RFC_9106_LOW_MEMORY)


def hash_password(password: str) -> str:
    """An argon2id PHC string for the password (RFC 9106 section 4)."""
    return _hasher.hash(password)


async def hash_password_async(password: str) -> str:
    """Hash in a worker thread so the event loop keeps serving meanwhile."""
    return await asyncio.to_thread(hash_password, password)
