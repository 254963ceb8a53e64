"""The storage contract: records in and out, and the one protocol the store implements.

One SQL implementation (idp.store.sql) serves it over two dialects (SQLite and PostgreSQL),
and both pass the same conformance tests.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
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
    require_consent: bool = False
    backchannel_logout_uri: str | None = None

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
class SessionRecord:
    """A browser's sign-in at the provider (OpenID Connect Session Management: the OP session).

    ``id`` is the SHA-256 of the cookie's random value, never the value itself; ``sid`` is
    the public session id that ID tokens and logout tokens carry.
    """

    id: bytes = field(repr=False)
    sid: str
    user_id: str
    auth_time: float
    created_at: float
    last_seen_at: float
    idle_expires_at: float
    expires_at: float
    ended_at: float | None = None

    def is_live(self, now: float) -> bool:
        """Not ended, and neither the idle nor the absolute timeout has passed."""
        return self.ended_at is None and now < self.idle_expires_at and now < self.expires_at


@dataclass(frozen=True)
class AuthorizationCodeRecord:
    """An issued authorization code (RFC 6749 section 4.1.2); only its SHA-256 is kept.

    ``id`` is a random row id and the id of the grant: the refresh-token family id and the
    ``grant_id`` claim of what the code's redemption issues, so a replay can revoke it all
    (RFC 6749 section 4.1.2).
    """

    id: str
    code_hash: bytes = field(repr=False)
    client_id: str
    redirect_uri: str
    user_id: str
    sid: str
    scope: tuple[str, ...]
    nonce: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    auth_time: float
    created_at: float
    expires_at: float
    consumed_at: float | None = None


@dataclass(frozen=True)
class CodeRedemption:
    """The outcome of consuming a code: the row, and whether an earlier redemption won."""

    code: AuthorizationCodeRecord
    already_consumed: bool


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
    rewrapped: frozenset[str] = frozenset()
    """Kids among ``updates`` whose private part was sealed anew under another
    key-encryption key (audited as key.rewrap)."""

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
    subject: str | None = None
    """The ``sub`` of the admin API token behind the row; None for the CLI and the server."""
    count: int = 1
    """How many refused calls a counted row stands for (``Store.count_audit``); else 1."""


@dataclass(frozen=True)
class Actor:
    """Who performs a change, and when: written into the audit trail with the change."""

    name: str
    at: float
    subject: str | None = None


SYSTEM = "system"


def user_revocation_id(user_id: str) -> str:
    """The revoked-grant id under which ending a user's access is recorded."""
    return f"user:{user_id}"


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
            subject=actor.subject,
        )
        for key in change.inserts
    ]
    for key in change.updates:
        previous = states.get(key.kid)
        if key.kid in change.rewrapped:
            entries.append(
                AuditEntry(actor.at, actor.name, "key.rewrap", key.kid, detail={"alg": key.alg})
            )
        if previous == key.state:
            continue
        entries.append(
            AuditEntry(
                actor.at,
                actor.name,
                _KEY_ACTIONS.get(key.state, "key.update"),
                key.kid,
                detail={"alg": key.alg, "from": previous, "to": key.state},
                subject=actor.subject,
            )
        )
    return entries


@dataclass(frozen=True)
class RefreshTokenRecord:
    """One refresh token as stored: only the SHA-256 of the opaque token is kept.

    Every token of one grant shares a ``family_id``; a rotation marks the presented token
    ``rotated_at`` and adds its successor one ``generation`` further, with the same scope
    (the ceiling granted by the user), client, user, session and ``auth_time``.
    """

    id: str
    token_hash: bytes = field(repr=False)
    family_id: str
    parent_id: str | None
    generation: int
    client_id: str
    user_id: str
    sid: str | None
    scope: tuple[str, ...]
    auth_time: float
    offline: bool
    created_at: float
    expires_at: float
    rotated_at: float | None = None
    revoked_at: float | None = None


class RotationOutcome(Enum):
    """What presenting a refresh token to the store's rotation did."""

    ROTATED = "rotated"
    """The live token was consumed and its successor inserted."""
    GRACE_SIBLING = "grace_sibling"
    """The immediate predecessor of the newest generation, again within the grace period:
    a second successor (a sibling of the first) was inserted."""
    REUSED = "reused"
    """An already-rotated token outside the grace rules: the whole family is now revoked."""
    UNKNOWN = "unknown"
    REVOKED = "revoked"
    EXPIRED = "expired"
    WRONG_CLIENT = "wrong_client"
    USER_DISABLED = "user_disabled"


@dataclass(frozen=True)
class RefreshRotation:
    """The outcome of one rotation, with the successor when one was issued."""

    outcome: RotationOutcome
    successor: RefreshTokenRecord | None = None


@dataclass(frozen=True)
class NewRefreshToken:
    """What the caller chooses for a successor: its id, the hash of its token and its expiry."""

    id: str
    token_hash: bytes = field(repr=False)
    expires_at: float


@dataclass(frozen=True)
class LoginCounter:
    """Recent failed logins for one throttled key (an account or a client address)."""

    key: str
    failures: int
    window_started_at: float
    last_failure_at: float
    locked_until: float | None
    expires_at: float


@dataclass(frozen=True)
class LoginCounterChange:
    """What one atomic update writes to the login counters: new rows, and keys to forget."""

    put: tuple[LoginCounter, ...] = ()
    forget: tuple[str, ...] = ()


LoginCounterUpdate = Callable[[Mapping[str, LoginCounter]], LoginCounterChange]
"""Decides, from the live counters of some keys, what to write (see update_login_counters)."""


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

    async def update_client(self, client: ClientRecord, audit: AuditEntry | None = None) -> bool:
        """Replace a client's row by client_id; ``audit`` is written only if it existed.

        Raises Conflict when the new name belongs to another client.
        """
        ...

    async def delete_client(self, client_id: str, audit: AuditEntry | None = None) -> bool:
        """Delete a client; ``audit`` is written (in the same transaction) only if it existed."""
        ...

    async def create_user(self, user: UserRecord, audit: AuditEntry | None = None) -> None:
        """Add a user; raises Conflict when another has the same canonical username."""
        ...

    async def get_user(self, user_id: str) -> UserRecord | None: ...

    async def list_users(self) -> list[UserRecord]: ...

    async def update_user(self, user: UserRecord, audit: AuditEntry | None = None) -> bool:
        """Replace a user's row by id; ``audit`` is written only if it existed.

        Raises Conflict when the new username belongs to another user.
        """
        ...

    async def delete_user(self, user_id: str, audit: AuditEntry | None = None) -> bool:
        """Delete a user; ``audit`` is written (in the same transaction) only if it existed."""
        ...

    async def get_user_by_username(self, username: str) -> UserRecord | None:
        """The user whose canonical username (``idp.store.usernames``) is that of ``username``."""
        ...

    async def set_user_password_hash(self, user_id: str, password_hash: str) -> bool:
        """Replace the user's password hash; False when no such user."""
        ...

    # -- browser sessions ---------------------------------------------------------------

    async def create_session(self, session: SessionRecord) -> None: ...

    async def get_session(self, session_id: bytes) -> SessionRecord | None:
        """The session whose id (the hash of the cookie value) is given, ended or not."""
        ...

    async def touch_session(self, session_id: bytes, now: float, idle_expires_at: float) -> None:
        """Record activity: last_seen_at and a later idle expiry (never past expires_at)."""
        ...

    async def end_session(self, session_id: bytes, now: float) -> SessionRecord | None:
        """Mark a live session ended; the session as ended, or None if it already was."""
        ...

    async def end_user_sessions(self, user_id: str, now: float) -> list[SessionRecord]:
        """End every not-yet-ended session of the user; return the sessions just ended."""
        ...

    async def add_session_client(self, session_id: bytes, client_id: str, now: float) -> None:
        """Remember that a client received tokens through this session (idempotent)."""
        ...

    async def list_session_clients(self, session_id: bytes) -> list[str]: ...

    async def delete_expired_sessions(self, now: float, limit: int) -> int:
        """Delete at most ``limit`` sessions past their idle or absolute expiry; the count."""
        ...

    # -- authorization codes ------------------------------------------------------------

    async def create_authorization_code(self, code: AuthorizationCodeRecord) -> None: ...

    async def consume_authorization_code(
        self, code_hash: bytes, now: float
    ) -> CodeRedemption | None:
        """Mark the code consumed in one atomic step (RFC 6749 section 4.1.2: single use).

        Of any number of concurrent callers exactly one gets ``already_consumed=False``;
        the others (and every later caller) get the row with ``already_consumed=True``.
        None when no such code exists. Expiry is the caller's to check.
        """
        ...

    async def delete_expired_authorization_codes(self, now: float, limit: int) -> int:
        """Delete at most ``limit`` codes whose expiry has passed; the count."""
        ...

    # -- consents -----------------------------------------------------------------------

    async def get_consent(self, user_id: str, client_id: str) -> tuple[str, ...]:
        """The scopes the user has granted the client (empty when none)."""
        ...

    async def save_consent(
        self, user_id: str, client_id: str, scope: tuple[str, ...], now: float
    ) -> None:
        """Add scopes to the user's grant for the client (earlier ones are kept)."""
        ...

    async def list_keys(self) -> list[KeyRecord]: ...

    async def key_ring_version(self) -> int: ...

    # -- refresh tokens (RFC 6749 section 6, RFC 9700 section 4.14) -------------------------

    async def create_refresh_token(self, token: RefreshTokenRecord) -> None: ...

    async def get_refresh_token(self, token_hash: bytes) -> RefreshTokenRecord | None: ...

    async def rotate_refresh_token(
        self,
        token_hash: bytes,
        *,
        client_id: str,
        successor: NewRefreshToken,
        now: float,
        reuse_grace: float,
    ) -> RefreshRotation:
        """Consume a live refresh token and insert its successor, in one transaction.

        The presented token must belong to ``client_id``, be unexpired, unrevoked, of an
        enabled user and not yet rotated; then it is marked rotated and the successor (same
        family, generation + 1) inserted. A token already rotated less than ``reuse_grace``
        seconds ago whose generation is exactly one below the newest of its family gets a
        second successor (GRACE_SIBLING). Any other rotated token revokes the whole family
        (REUSED). Concurrent calls on one token are serialised; with a grace of 0 exactly
        one of them rotates. REUSED also records the family's grant revoked (for its
        access tokens) in the same transaction.
        """
        ...

    async def revoke_refresh_family(self, family_id: str, now: float) -> int:
        """End the grant ``family_id``: revoke its refresh tokens and record the grant revoked
        (for its access tokens) in one transaction; how many refresh tokens changed."""
        ...

    async def revoke_session_refresh_tokens(self, sid: str, now: float) -> int:
        """End the session-bound grants of session ``sid``: revoke their refresh tokens (not
        offline ones) and record ``sid`` revoked, in one transaction; how many tokens changed."""
        ...

    async def revoke_user_refresh_tokens(self, user_id: str, now: float) -> int:
        """End every grant of a user: revoke all their refresh tokens (offline ones included),
        record each family revoked, and record the user (``user_revocation_id``) revoked at
        ``now``, so that every access token issued to them until then is refused even if the
        account is enabled again; in one transaction; how many refresh tokens changed."""
        ...

    async def delete_expired_refresh_tokens(self, now: float, limit: int) -> int:
        """Delete at most ``limit`` tokens whose expiry has passed; return how many went."""
        ...

    # -- revoked access tokens (RFC 7009 section 2) ------------------------------------------

    async def revoke_access_token(
        self, jti: str, client_id: str, now: float, expires_at: float
    ) -> bool:
        """Record the access token ``jti`` as revoked until ``expires_at`` (idempotent).

        True when this call recorded it, False when it was already recorded.
        """
        ...

    async def access_token_revoked(
        self,
        jti: str,
        client_id: str,
        grant_ids: Sequence[str] = (),
        user_id: str | None = None,
        issued_at: float = 0.0,
    ) -> bool:
        """Whether an access token is no longer good, in one statement of primary-key lookups.

        True when ``jti`` was revoked (rows stay until the token's own expiry), when any of
        ``grant_ids`` (the token's grant, its session) is among the revoked grants, when the
        token's user ``user_id`` had their access ended at or after ``issued_at`` (its
        ``iat``), or when the client ``client_id`` no longer exists.
        """
        ...

    async def delete_expired_revoked_access_tokens(self, now: float, limit: int) -> int:
        """Delete at most ``limit`` rows of tokens past their expiry; return how many went."""
        ...

    async def grant_revoked(self, grant_ids: Sequence[str]) -> bool:
        """Whether any of ``grant_ids`` (a grant, a session) is among the revoked grants."""
        ...

    async def delete_revoked_grants_before(self, cutoff: float, limit: int) -> int:
        """Delete at most ``limit`` revoked-grant rows revoked at or before ``cutoff``: by then
        every access token they cover has expired. Return how many went."""
        ...

    # -- login throttling -------------------------------------------------------------------

    async def update_login_counters(
        self, keys: Sequence[str], now: float, update: LoginCounterUpdate
    ) -> None:
        """Apply ``update`` to the live counters of ``keys`` and write its change, atomically.

        ``update`` sees the counters among ``keys`` that have not expired at ``now`` and
        returns what to write and what to forget. Callers touching any of the same keys
        (other processes included) run one after another, so what ``update`` decided on
        still holds when its change is written: the login throttle's reservations rely on it.
        """
        ...

    async def get_login_counters(self, keys: Sequence[str], now: float) -> list[LoginCounter]:
        """The live (unexpired) counters among ``keys``."""
        ...

    async def clear_login_failures(self, key: str, audit: AuditEntry | None = None) -> bool:
        """Forget the failures and locks of ``key`` and of every ``key|...`` under it.

        Says whether there was anything to forget.

        ``audit`` is written in the same transaction, and only when something was forgotten.
        """
        ...

    async def delete_expired_login_failures(self, now: float, limit: int) -> int:
        """Delete at most ``limit`` expired counters; return how many went."""
        ...

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

    async def count_audit(self, entry: AuditEntry, bucket: str) -> None:
        """Write ``entry`` as the one row of ``bucket``, or add one to that row's count.

        An upsert on the unique ``bucket``: however many calls share a bucket, the table
        grows by one row (for refused unauthenticated admin calls).
        """
        ...

    async def list_audit(self, since: float | None = None, limit: int = 1000) -> list[AuditEntry]:
        """Audit rows at or after ``since``, oldest first, at most ``limit`` (the newest ones)."""
        ...
