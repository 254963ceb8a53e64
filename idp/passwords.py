"""User passwords: argon2id with the RFC 9106 low-memory profile (t=3, m=64 MiB, p=4).

Hashing is CPU- and memory-bound, so it runs in worker threads, and a semaphore bounds how
many hashes run at once: a burst of logins queues instead of exhausting memory, and the
event loop keeps serving other requests meanwhile.
"""

from __future__ import annotations

import asyncio
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from argon2.profiles import RFC_9106_LOW_MEMORY

_hasher = PasswordHasher.from_parameters(RFC_9106_LOW_MEMORY)


def hash_password(password: str) -> str:
    """An argon2id PHC string for the password (RFC 9106 section 4)."""
    return _hasher.hash(password)


async def hash_password_async(password: str) -> str:
    """Hash in a worker thread so the event loop keeps serving meanwhile."""
    return await asyncio.to_thread(hash_password, password)


def verify_password(password_hash: str, password: str) -> bool:
    """Whether the password matches the PHC string; a malformed hash never matches."""
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    """Whether the hash was made with other parameters than the current ones."""
    try:
        return _hasher.check_needs_rehash(password_hash)
    except (InvalidHashError, ValueError):
        return True


class PasswordService:
    """Verifies and hashes passwords in worker threads, at most ``concurrency`` at a time."""

    def __init__(self, concurrency: int) -> None:
        self._slots = asyncio.Semaphore(concurrency)
        self._dummy_hash: str | None = None

    async def _dummy(self) -> str:
        # A real hash with the current parameters, so that checking an unknown user costs
        # what checking a known one does (no account enumeration by timing).
        if self._dummy_hash is None:
            self._dummy_hash = await hash_password_async(secrets.token_urlsafe(16))
        return self._dummy_hash

    async def verify(self, password_hash: str | None, password: str) -> bool:
        """Check a password against a stored hash, or against a dummy hash when there is none."""
        stored = password_hash if password_hash is not None else await self._dummy()
        async with self._slots:
            matches = await asyncio.to_thread(verify_password, stored, password)
        return matches and password_hash is not None

    async def hash(self, password: str) -> str:
        """A fresh hash with the current parameters, within the same concurrency bound."""
        async with self._slots:
            return await hash_password_async(password)
