"""User passwords: argon2id with the RFC 9106 low-memory profile (t=3, m=64 MiB, p=4).

Hashing is CPU- and memory-bound, so it runs in a dedicated pool of worker threads, and a
semaphore bounds how many hashes run at once: a burst of logins queues instead of
exhausting memory, and the event loop keeps serving other requests meanwhile.

argon2 releases the GIL while it hashes, so the loop is never blocked outright; what is
left is competition for the cores (with p=4 each hash runs on four threads of libargon2's
own). On Linux the pool's threads therefore lower their own priority (nice +10) when they
start; the nice value is per thread there and libargon2's lane threads inherit it, so
when the cores are saturated by logins, the event loop's thread still gets a core first
and cheap requests such as ``/jwks.json`` keep their latency (bench/login measures it).
Elsewhere the priority is left alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import sys
import threading
import weakref
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from argon2.profiles import RFC_9106_LOW_MEMORY

_hasher = PasswordHasher.from_parameters(RFC_9106_LOW_MEMORY)

HASH_THREAD_NICE_INCREMENT = 10
"""How much nicer than the rest of the process the hashing threads run (Linux only)."""

MAX_NICE = 19
_T = TypeVar("_T")


def hash_password(password: str) -> str:
    """An argon2id PHC string for the password (RFC 9106 section 4)."""
    return _hasher.hash(password)


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


def lower_thread_priority(increment: int = HASH_THREAD_NICE_INCREMENT) -> None:
    """Make the calling thread, and the threads it starts, yield the CPU to the others.

    Linux keeps a nice value per thread (setpriority(2) with a thread id), and threads
    inherit their creator's; other systems apply it to the whole process, so there this
    does nothing. Raising one's own nice value never needs a privilege.
    """
    if not sys.platform.startswith("linux"):
        return
    thread = threading.get_native_id()
    with contextlib.suppress(OSError):
        current = os.getpriority(os.PRIO_PROCESS, thread)
        os.setpriority(os.PRIO_PROCESS, thread, min(MAX_NICE, current + increment))


def hashing_pool(threads: int) -> ThreadPoolExecutor:
    """A pool of ``threads`` worker threads that run at lowered priority (see the module)."""
    return ThreadPoolExecutor(
        max_workers=threads,
        thread_name_prefix="idp-argon2",
        initializer=lower_thread_priority,
    )


_shared_pool: ThreadPoolExecutor | None = None
_shared_pool_lock = threading.Lock()


def _default_pool() -> ThreadPoolExecutor:
    global _shared_pool
    with _shared_pool_lock:
        if _shared_pool is None:
            _shared_pool = hashing_pool(os.cpu_count() or 1)
        return _shared_pool


async def _in_pool(pool: ThreadPoolExecutor, work: Callable[..., _T], *args: str) -> _T:
    return await asyncio.get_running_loop().run_in_executor(pool, work, *args)


HashPassword = Callable[[str], Awaitable[str]]
"""Turns a password into its argon2id hash, off the event loop."""


async def hash_password_async(password: str) -> str:
    """Hash in a low-priority worker thread so the event loop keeps serving meanwhile."""
    return await _in_pool(_default_pool(), hash_password, password)


class PasswordService:
    """Verifies and hashes passwords in its own low-priority threads, ``concurrency`` at a time.

    The semaphore and the pool have the same size: the semaphore keeps waiting logins
    cancellable (a client that goes away never reaches a thread), the pool's threads keep
    their lowered priority for their whole life.
    """

    def __init__(self, concurrency: int) -> None:
        self._slots = asyncio.Semaphore(concurrency)
        self._concurrency = concurrency
        self._pool: ThreadPoolExecutor | None = None
        self._dummy_hash: str | None = None

    def _threads(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = hashing_pool(self._concurrency)
            weakref.finalize(self, self._pool.shutdown, wait=False)
        return self._pool

    async def _dummy(self) -> str:
        # A real hash with the current parameters, so that checking an unknown user costs
        # what checking a known one does (no account enumeration by timing).
        if self._dummy_hash is None:
            self._dummy_hash = await self.hash(secrets.token_urlsafe(16))
        return self._dummy_hash

    async def verify(self, password_hash: str | None, password: str) -> bool:
        """Check a password against a stored hash, or against a dummy hash when there is none."""
        stored = password_hash if password_hash is not None else await self._dummy()
        async with self._slots:
            matches = await _in_pool(self._threads(), verify_password, stored, password)
        return matches and password_hash is not None

    async def hash(self, password: str) -> str:
        """A fresh hash with the current parameters, within the same concurrency bound."""
        async with self._slots:
            return await _in_pool(self._threads(), hash_password, password)
