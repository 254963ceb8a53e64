"""The storage contract: records in and out, and the one protocol every backend implements.

Both backends (SQLite and PostgreSQL) pass the same conformance tests in tests/test_store.py.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol


class StoreError(Exception):
    """Base class for storage failures that callers are expected to handle."""


class StoreUnavailable(StoreError):
    """The database cannot be reached right now; the caller should retry later."""


class SchemaOutdated(StoreError):
    """The database schema is missing migrations; ``idp migrate`` applies them."""


class Conflict(StoreError):
    """A unique value (client name, username) is already taken."""


class NotFound(StoreError):
    """The named row does not exist."""


@dataclass(frozen=True)
class ClientRecord:
    """A registered OAuth client (RFC 7591 section 2 metadata names)."""

    client_id: str
    name: str
    secret_hash: bytes | None
    redirect_uris: tuple[str, ...]
    post_logout_redirect_uris: tuple[str, ...]
    grant_types: tuple[str, ...]
    scope: tuple[str, ...]
    audiences: tuple[str, ...]
    token_endpoint_auth_method: str
    access_token_alg: str
    id_token_alg: str
    created_at: float

    @property
    def is_public(self) -> bool:
        return self.token_endpoint_auth_method == "none"


@dataclass(frozen=True)
class UserRecord:
    """A person who can sign in; only the argon2id hash of the password is kept."""

    id: str
    username: str
    password_hash: str = field(repr=False)
    email: str | None
    name: str | None
    created_at: float
    disabled: bool = False


@dataclass(frozen=True)
class KeyRecord:
    """One signing key as stored: the private part sealed under the key-encryption key."""

    kid: str
    alg: str
    state: str
    public_jwk: str
    private_key_sealed: bytes | None = field(repr=False)
    created_at: float
    activated_at: float | None = None
    retired_at: float | None = None
    revoked_at: float | None = None


@dataclass(frozen=True)
class KeyRingChange:
    """What one key-ring transaction writes: new keys and new states for existing ones."""

    inserts: tuple[KeyRecord, ...] = ()
    updates: tuple[KeyRecord, ...] = ()
    imported: frozenset[str] = frozenset()
    """Kids among ``inserts`` that an operator imported (audited as key.import)."""

    @property
    def is_empty(self) -> bool:
        return not self.inserts and not self.updates


KeyRingMutation = Callable[[Sequence[KeyRecord]], KeyRingChange]


@dataclass(frozen=True)
class AuditEntry:
    """One line of the audit trail: who did what to which object, and whether it worked."""

    at: float
    actor: str
    action: str
    target: str
    outcome: str = "success"
    detail: Mapping[str, Any] = field(default_factory=dict)
    id: int | None = None


@dataclass(frozen=True)
class Actor:
    """Who performs a change, and when: written into the audit trail with the change."""

    name: str
    at: float


SYSTEM = "system"

_KEY_ACTIONS = {
    "next": "key.prepublish",
    "active": "key.activate",
    "retired": "key.retire",
    "revoked": "key.revoke",
    "expired": "key.expire",
}


def key_audit_entries(
    before: Sequence[KeyRecord], change: KeyRingChange, actor: Actor
) -> list[AuditEntry]:
    """The audit rows for one key-ring change: one per new key and one per state change."""
    states = {key.kid: key.state for key in before}
    entries = [
        AuditEntry(
            actor.at,
            actor.name,
            "key.import" if key.kid in change.imported else "key.create",
            key.kid,
            detail={"alg": key.alg, "state": key.state},
        )
        for key in change.inserts
    ]
    for key in change.updates:
        previous = states.get(key.kid)
        if previous == key.state:
            continue
        entries.append(
            AuditEntry(
                actor.at,
                actor.name,
                _KEY_ACTIONS.get(key.state, "key.update"),
                key.kid,
                detail={"alg": key.alg, "from": previous, "to": key.state},
            )
        )
    return entries


@dataclass(frozen=True)
class SchemaStatus:
    """Which numbered migrations are applied and which are still missing."""

    applied: tuple[int, ...]
    pending: tuple[int, ...]

    @property
    def up_to_date(self) -> bool:
        return not self.pending


class Store(Protocol):
    """Everything the service keeps. Methods raise StoreUnavailable when the database is down."""

    description: str

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def ping(self) -> None: ...

    async def schema_status(self) -> SchemaStatus: ...

    async def migrate(self) -> list[int]: ...

    async def create_client(self, client: ClientRecord, audit: AuditEntry | None = None) -> None:
        """Insert a client; ``audit`` is written in the same transaction."""
        ...

    async def get_client(self, client_id: str) -> ClientRecord | None: ...

    async def list_clients(self) -> list[ClientRecord]: ...

    async def delete_client(self, client_id: str, audit: AuditEntry | None = None) -> bool:
        """Delete a client; ``audit`` is written (in the same transaction) only if it existed."""
        ...

    async def create_user(self, user: UserRecord, audit: AuditEntry | None = None) -> None: ...

    async def list_users(self) -> list[UserRecord]: ...

    async def list_keys(self) -> list[KeyRecord]: ...

    async def key_ring_version(self) -> int: ...

    async def change_key_ring(
        self, mutation: KeyRingMutation, actor: Actor | None = None
    ) -> list[KeyRecord]:
        """Apply ``mutation`` to the current keys in one serialised transaction.

        The mutation sees every key row and returns what to insert and update; the store
        writes it, bumps the ring version, records each transition in the audit trail (as
        ``actor``, by default the system itself), and returns the keys as they are afterwards.
        Concurrent callers (other processes included) run one after another.
        """
        ...

    async def watch_key_ring(self, on_change: Callable[[], None]) -> None:
        """Call ``on_change`` soon after every committed key-ring change, until cancelled.

        A store without change notifications returns at once; its readers poll
        ``key_ring_version`` instead (which every reader does anyway, as a fallback).
        """
        ...

    async def record_audit(self, entry: AuditEntry) -> None:
        """Write one audit row on its own (for refused calls that change nothing)."""
        ...

    async def list_audit(self, since: float | None = None, limit: int = 1000) -> list[AuditEntry]:
        """Audit rows at or after ``since``, oldest first, at most ``limit`` (the newest ones)."""
        ...
