"""The storage contract: errors, the records (from ``records``), and the ``Store`` protocol.

``Store`` is the sum of narrow role protocols, one per kind of data (``SessionStore``,
``RefreshTokenStore``, ``KeyRingStore`` ...), so that a caller that needs one part names only
that part. One SQL implementation (``idp.store.sql``) serves all of it over two dialects
(SQLite and PostgreSQL), and both pass the same conformance tests (``tests/store``). Every
method raises StoreUnavailable when the database cannot be reached. Each ``delete_expired_*``
method deletes at most ``limit`` rows whose expiry (for a session, the idle or the absolute
one) is at or before ``now``, oldest first, and returns how many went: housekeeping calls
them in batches.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from idp.store.client_cache import ClientCache

# Records are imported from here by the rest of the service, so they are re-exported.
from idp.store.records import SYSTEM as SYSTEM
from idp.store.records import Actor as Actor
from idp.store.records import AuditEntry as AuditEntry
from idp.store.records import AuthorizationCodeRecord as AuthorizationCodeRecord
from idp.store.records import ClientRecord as ClientRecord
from idp.store.records import CodeRedemption as CodeRedemption
from idp.store.records import ConsentRecord as ConsentRecord
from idp.store.records import DeviceApproval as DeviceApproval
from idp.store.records import DeviceCodePoll as DeviceCodePoll
from idp.store.records import DeviceCodeRecord as DeviceCodeRecord
from idp.store.records import DeviceCodeStatus as DeviceCodeStatus
from idp.store.records import InitialAccessTokenRecord as InitialAccessTokenRecord
from idp.store.records import InitialAccessTokenSummary as InitialAccessTokenSummary
from idp.store.records import KeyRecord as KeyRecord
from idp.store.records import KeyRingChange as KeyRingChange
from idp.store.records import KeyRingMutation as KeyRingMutation
from idp.store.records import LoginCounter as LoginCounter
from idp.store.records import LoginCounterChange as LoginCounterChange
from idp.store.records import LoginCounterUpdate as LoginCounterUpdate
from idp.store.records import NewRefreshToken as NewRefreshToken
from idp.store.records import PasskeyRecord as PasskeyRecord
from idp.store.records import PushedRequestRecord as PushedRequestRecord
from idp.store.records import RecoveryCode as RecoveryCode
from idp.store.records import RefreshRotation as RefreshRotation
from idp.store.records import RefreshRotationRequest as RefreshRotationRequest
from idp.store.records import RefreshTokenRecord as RefreshTokenRecord
from idp.store.records import RotationOutcome as RotationOutcome
from idp.store.records import SchemaStatus as SchemaStatus
from idp.store.records import SessionRecord as SessionRecord
from idp.store.records import TotpCredential as TotpCredential
from idp.store.records import UserRecord as UserRecord
from idp.store.records import WebAuthnChallengeRecord as WebAuthnChallengeRecord


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


class SchemaStore(Protocol):
    """The connection and the schema: open before use, migrate to the newest schema."""

    description: str
    """Where the data is, for messages (never with a password)."""

    async def open(self) -> None: ...
    async def close(self) -> None: ...
    async def ping(self) -> None: ...
    async def schema_status(self) -> SchemaStatus: ...

    async def migrate(self) -> list[int]:
        """Apply each pending migration in its own transaction, serialised across processes."""


class ClientStore(Protocol):
    """Registered clients. ``audit`` rows are written in the same transaction as the change,
    and only when it changed a row."""

    client_cache: ClientCache | None
    """The clients held in memory while ``cache_clients`` runs (None otherwise)."""

    async def get_client(self, client_id: str) -> ClientRecord | None: ...
    async def list_clients(self) -> list[ClientRecord]: ...

    async def create_client(self, client: ClientRecord, audit: AuditEntry | None = None) -> None:
        """Insert a client; raises Conflict when another has the same name."""

    async def update_client(self, client: ClientRecord, audit: AuditEntry | None = None) -> bool:
        """Replace a client's row by client_id; whether it existed. Conflict as create_client."""

    async def delete_client(self, client_id: str, audit: AuditEntry | None = None) -> bool:
        """Delete a client; whether it existed."""

    async def clients_version(self) -> int:
        """A counter that every committed change to the clients moves (in its transaction)."""

    async def watch_clients(self, on_change: Callable[[], None]) -> None:
        """Call ``on_change`` soon after every committed change to the clients, until
        cancelled; as watch_key_ring, a store without notifications returns at once."""

    async def cache_clients(self) -> None:
        """Hold the clients that ``get_client_cached`` finds in memory, in step with
        ``clients_version``, until cancelled (``idp.store.client_cache``); for a server."""

    async def get_client_cached(self, client_id: str) -> ClientRecord | None:
        """``get_client`` from memory while ``cache_clients`` runs: at most a second behind
        other processes' changes and never behind this store object's own; else as
        ``get_client``. For lookups that only read (client authentication), never for a
        read that a write builds on."""


class UserStore(Protocol):
    """People who sign in. ``audit`` rows as in ClientStore."""

    async def get_user(self, user_id: str) -> UserRecord | None: ...
    async def list_users(self) -> list[UserRecord]: ...

    async def create_user(self, user: UserRecord, audit: AuditEntry | None = None) -> None:
        """Add a user; raises Conflict when another has the same canonical username."""

    async def update_user(self, user: UserRecord, audit: AuditEntry | None = None) -> bool:
        """Replace a user's row by id; whether it existed. Conflict as create_user."""

    async def delete_user(self, user_id: str, audit: AuditEntry | None = None) -> bool:
        """Delete a user; whether it existed."""

    async def get_user_by_username(self, username: str) -> UserRecord | None:
        """The user whose canonical username (``idp.store.usernames``) is that of ``username``."""

    async def set_user_password_hash(self, user_id: str, password_hash: str) -> bool:
        """Replace the user's password hash; False when no such user."""


class PasskeyStore(Protocol):
    """Passkeys (WebAuthn Level 2): user handles, credentials and single-use challenges.
    ``audit`` rows as in ClientStore."""

    async def get_webauthn_user_handle(self, user_id: str) -> bytes | None: ...
    async def list_passkeys(self, user_id: str) -> list[PasskeyRecord]: ...
    async def get_passkey(self, credential_id: bytes) -> PasskeyRecord | None: ...
    async def delete_expired_webauthn_challenges(self, now: float, limit: int) -> int: ...

    async def ensure_webauthn_user_handle(self, user_id: str, user_handle: bytes) -> bytes:
        """The user's handle (WebAuthn 5.4.3): the one stored, else ``user_handle`` stored now."""

    async def get_user_id_by_webauthn_handle(self, user_handle: bytes) -> str | None:
        """The id of the user whose WebAuthn user handle this is."""

    async def add_passkey(self, passkey: PasskeyRecord, audit: AuditEntry | None = None) -> None:
        """Register a credential; Conflict when its credential id is already registered
        (WebAuthn 7.1 step 22: to this or any other user)."""

    async def delete_passkey(
        self, user_id: str, credential_id: bytes, audit: AuditEntry | None = None
    ) -> bool:
        """Remove the user's credential; False when the user has no such credential."""

    async def record_passkey_use(
        self, credential_id: bytes, sign_count: int, backed_up: bool, now: float
    ) -> bool:
        """Store a verified assertion's counter and backup state, in one conditional update.

        Refused (False, nothing written) when the counter does not move forward while either
        it or the stored one is non-zero (WebAuthn 7.2 step 21), also against a concurrent
        use of the same credential, or when the credential is gone.
        """

    async def create_webauthn_challenge(self, challenge: WebAuthnChallengeRecord) -> None: ...

    async def consume_webauthn_challenge(
        self, challenge_id: str, now: float
    ) -> WebAuthnChallengeRecord | None:
        """Delete the challenge and return it, if it existed and had not expired: of any
        number of concurrent callers at most one gets it."""


class SessionStore(Protocol):
    """Browser sessions at the provider, and the clients that received tokens through each."""

    async def create_session(self, session: SessionRecord) -> None: ...
    async def list_session_clients(self, session_id: bytes) -> list[str]: ...
    async def delete_expired_sessions(self, now: float, limit: int) -> int: ...

    async def get_session(self, session_id: bytes) -> SessionRecord | None:
        """The session whose id (the hash of the cookie value) is given, ended or not."""

    async def touch_session(self, session_id: bytes, now: float, idle_expires_at: float) -> None:
        """Record activity: last_seen_at and a later idle expiry (never past expires_at)."""

    async def end_session(self, session_id: bytes, now: float) -> SessionRecord | None:
        """Mark a live session ended; the session as ended, or None if it already was."""

    async def end_user_sessions(self, user_id: str, now: float) -> list[SessionRecord]:
        """End every not-yet-ended session of the user; return the sessions just ended."""

    async def list_user_sessions(self, user_id: str, now: float) -> list[SessionRecord]:
        """The user's live sessions (not ended, not timed out at ``now``), newest first."""

    async def get_session_by_sid(self, sid: str) -> SessionRecord | None:
        """The session whose public id (``sid``, as ID tokens carry it) is given, ended or not."""

    async def add_session_client(self, session_id: bytes, client_id: str, now: float) -> None:
        """Remember that a client received tokens through this session (idempotent)."""


class CodeStore(Protocol):
    """Authorization codes (RFC 6749 section 4.1.2), kept by their SHA-256."""

    async def create_authorization_code(self, code: AuthorizationCodeRecord) -> None: ...
    async def delete_expired_authorization_codes(self, now: float, limit: int) -> int: ...

    async def consume_authorization_code(
        self, code_hash: bytes, now: float
    ) -> CodeRedemption | None:
        """Mark the code consumed in one atomic step (RFC 6749 section 4.1.2: single use).

        Of any number of concurrent callers exactly one gets ``already_consumed=False``;
        the others (and every later caller) get the row with ``already_consumed=True``.
        None when no such code exists. Expiry is the caller's to check.
        """


class PushedRequestStore(Protocol):
    """Pushed authorization requests (RFC 9126), kept by the SHA-256 of their request_uri."""

    async def create_pushed_request(self, pushed: PushedRequestRecord) -> None: ...
    async def delete_expired_pushed_requests(self, now: float, limit: int) -> int: ...

    async def consume_pushed_request(
        self, request_uri_hash: bytes, now: float
    ) -> PushedRequestRecord | None:
        """Delete the pushed request and return it, if it existed and had not expired: of
        any number of concurrent callers at most one gets it (RFC 9126 section 4: one use)."""


class DeviceCodeStore(Protocol):
    """Device authorization requests (RFC 8628), kept by the SHA-256 of their device code
    and of their normalised user code."""

    async def create_device_code(self, device: DeviceCodeRecord) -> None: ...
    async def delete_expired_device_codes(self, now: float, limit: int) -> int: ...

    async def find_device_code(self, user_code_hash: bytes, now: float) -> DeviceCodeRecord | None:
        """The pending, unexpired device code whose user code this is, or None."""

    async def decide_device_code(self, device_id: str, approval: DeviceApproval) -> bool:
        """Record the person's decision on a pending, unexpired device code, once: of
        concurrent callers at most one gets True; False when it was decided or expired."""

    async def poll_device_code(
        self, device_code_hash: bytes, poll: DeviceCodePoll
    ) -> tuple[DeviceCodeRecord, DeviceCodeRecord] | None:
        """Apply ``poll`` to the device code in one serialised step and write what it
        returns; the row before and after, or None when there is no such device code.
        Concurrent polls of one code run one after another, so a code is redeemed once."""


class ClientAssertionStore(Protocol):
    """Client assertions already used (RFC 7523 section 3, jti), until they expire."""

    async def use_client_assertion(self, jti_hash: bytes, expires_at: float) -> bool:
        """Record one use; True the first time, False for every later use (of any number of
        concurrent callers exactly one gets True)."""

    async def delete_expired_client_assertions(self, now: float, limit: int) -> int: ...


class InitialAccessTokenStore(Protocol):
    """Initial access tokens for dynamic client registration (RFC 7591 section 3), kept by
    the SHA-256 of the token. ``audit`` rows as in ClientStore."""

    async def create_initial_access_token(
        self, token: InitialAccessTokenRecord, audit: AuditEntry | None = None
    ) -> None: ...

    async def get_initial_access_token(
        self, token_hash: bytes, now: float
    ) -> InitialAccessTokenRecord | None:
        """The token with this hash if it has not expired and has a use left, else None."""

    async def use_initial_access_token(
        self, token_hash: bytes, now: float
    ) -> InitialAccessTokenRecord | None:
        """Count one use of a live token with a use left, atomically (of two parallel uses
        of a token's last use, one gets None); the token as it was, or None."""

    async def list_initial_access_tokens(
        self, live_at: float | None = None
    ) -> list[InitialAccessTokenSummary]:
        """Every initial access token (never its hash), oldest first; with ``live_at``, only
        those that have not expired by then and have a use left."""

    async def delete_initial_access_token(
        self, token_id: str, audit: AuditEntry | None = None
    ) -> bool:
        """Delete the token with this id, so it registers no more clients; whether it existed."""

    async def delete_expired_initial_access_tokens(self, now: float, limit: int) -> int: ...


class ConsentStore(Protocol):
    """The scopes each user has granted each client."""

    async def get_consent(self, user_id: str, client_id: str) -> tuple[str, ...]:
        """The scopes the user has granted the client (empty when none)."""

    async def save_consent(
        self, user_id: str, client_id: str, scope: tuple[str, ...], now: float
    ) -> None:
        """Add scopes to the user's grant for the client (earlier ones are kept)."""

    async def list_consents(self, user_id: str) -> list[ConsentRecord]:
        """The user's consents, one per client, oldest grant first."""

    async def find_consents(
        self, user_id: str | None = None, client_id: str | None = None
    ) -> list[ConsentRecord]:
        """Every consent, or those of one user, one client, or both; oldest grant first."""

    async def revoke_consent(
        self, user_id: str, client_id: str, now: float, audit: AuditEntry | None = None
    ) -> bool:
        """End the user's grant to the client in one transaction: the consent row goes, and
        every refresh token of the user and client is revoked, its family recorded revoked
        (so the access tokens it issued are refused); whether there was a consent."""


class RefreshTokenStore(Protocol):
    """Refresh tokens (RFC 6749 section 6) in families rotated by RFC 9700 section 4.14."""

    async def create_refresh_token(self, token: RefreshTokenRecord) -> None: ...
    async def get_refresh_token(self, token_hash: bytes) -> RefreshTokenRecord | None: ...
    async def delete_expired_refresh_tokens(self, now: float, limit: int) -> int: ...

    async def rotate_refresh_token(self, request: RefreshRotationRequest) -> RefreshRotation:
        """Consume a live refresh token and insert its successor, in one transaction.

        The presented token must belong to ``client_id``, be unexpired, unrevoked, of an
        enabled user and not yet rotated; then it is marked rotated and the successor (same
        family, generation + 1) inserted. A token already rotated less than ``reuse_grace``
        seconds ago whose generation is exactly one below the newest of its family gets a
        second successor (GRACE_SIBLING). Any other rotated token revokes the whole family
        (REUSED). Concurrent calls on one token are serialised; with a grace of 0 exactly
        one of them rotates. REUSED also records the family's grant revoked (for its
        access tokens) in the same transaction. The rules are in ``idp.store.rotation``.
        """

    async def revoke_refresh_family(self, family_id: str, now: float) -> int:
        """End the grant ``family_id``: revoke its refresh tokens and record the grant revoked
        (for its access tokens) in one transaction; how many refresh tokens changed."""

    async def revoke_session_refresh_tokens(self, sid: str, now: float) -> int:
        """End the session-bound grants of session ``sid``: revoke their refresh tokens (not
        offline ones) and record ``sid`` revoked, in one transaction; how many tokens changed."""

    async def revoke_user_refresh_tokens(self, user_id: str, now: float) -> int:
        """End every grant of a user: revoke all their refresh tokens (offline ones included),
        record each family revoked, and record the user revoked at ``now``, so that every
        access token issued to them until then is refused even if the account is enabled
        again; in one transaction; how many refresh tokens changed."""


class RevocationStore(Protocol):
    """Revoked access tokens (RFC 7009 section 2) and revoked grants (families, sessions,
    users) that the self-contained access tokens they issued are checked against."""

    async def delete_expired_revoked_access_tokens(self, now: float, limit: int) -> int: ...

    async def revoke_access_token(
        self, jti: str, client_id: str, now: float, expires_at: float
    ) -> bool:
        """Record the access token ``jti`` as revoked until ``expires_at`` (idempotent).

        True when this call recorded it, False when it was already recorded.
        """

    async def access_token_revoked(
        self,
        jti: str,
        client_id: str,
        grant_ids: Sequence[str] = ...,
        user_id: str | None = ...,
        issued_at: float = ...,
    ) -> bool:
        """Whether an access token is no longer good, in one statement of primary-key lookups.

        True when ``jti`` was revoked (rows stay until the token's own expiry), when any of
        ``grant_ids`` (the token's grant, its session) is among the revoked grants, when the
        token's user ``user_id`` had their access ended at or after ``issued_at`` (its
        ``iat``), or when the client ``client_id`` no longer exists. Without ``grant_ids``
        or ``user_id`` (the defaults) those checks are not made.
        """

    async def grant_revoked(self, grant_ids: Sequence[str]) -> bool:
        """Whether any of ``grant_ids`` (a grant, a session) is among the revoked grants."""

    async def delete_revoked_grants_before(self, cutoff: float, limit: int) -> int:
        """Delete at most ``limit`` revoked-grant rows revoked at or before ``cutoff``: by then
        every access token they cover has expired. Return how many went."""


class DpopProofStore(Protocol):
    """DPoP proofs already accepted (RFC 9449 section 11.1), kept until they expire."""

    async def delete_expired_dpop_proofs(self, now: float, limit: int) -> int: ...

    async def record_dpop_proof(self, jti_hash: bytes, expires_at: float, now: float) -> bool:
        """Record a proof's ``jti_hash`` until ``expires_at``, once: True when this call
        recorded it, False when a live record (one not expired at ``now``) already holds it.
        Of concurrent callers with one hash, on any number of store objects, exactly one
        gets True."""


class LoginCounterStore(Protocol):
    """Failed-login counters of the login throttle, per account and per client address."""

    async def delete_expired_login_failures(self, now: float, limit: int) -> int: ...

    async def update_login_counters(
        self, keys: Sequence[str], now: float, update: LoginCounterUpdate
    ) -> None:
        """Apply ``update`` to the live counters of ``keys`` and write its change, atomically.

        ``update`` sees the counters among ``keys`` that have not expired at ``now`` and
        returns what to write and what to forget. Callers touching any of the same keys
        (other processes included) run one after another, so what ``update`` decided on
        still holds when its change is written: the login throttle's reservations rely on it.
        """

    async def get_login_counters(self, keys: Sequence[str], now: float) -> list[LoginCounter]:
        """The live (unexpired) counters among ``keys``."""

    async def clear_login_failures(self, key: str, audit: AuditEntry | None = None) -> bool:
        """Forget the failures and locks of ``key`` and of every ``key|...`` under it; whether
        there was anything to forget (``audit`` is written, in the same transaction, if so)."""


class KeyRingStore(Protocol):
    """The signing keys, changed only as a whole ring, with a version replicas follow."""

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

    async def watch_key_ring(self, on_change: Callable[[], None]) -> None:
        """Call ``on_change`` soon after every committed key-ring change, until cancelled.

        A store without change notifications returns at once; its readers poll
        ``key_ring_version`` instead (which every reader does anyway, as a fallback).
        """


class AuditStore(Protocol):
    """The audit trail (changes write their rows with the change; these are the others)."""

    async def record_audit(self, entry: AuditEntry) -> None:
        """Write one audit row on its own (for refused calls that change nothing)."""

    async def count_audit(self, entry: AuditEntry, bucket: str) -> None:
        """Write ``entry`` as the one row of ``bucket``, or add one to that row's count.

        An upsert on the unique ``bucket``: however many calls share a bucket, the table
        grows by one row (for refused unauthenticated admin calls).
        """

    async def list_audit(
        self,
        since: float | None = None,
        limit: int = 1000,
        before: int | None = None,
        action: str | None = None,
    ) -> list[AuditEntry]:
        """Audit rows at or after ``since`` with an id below ``before``, oldest first, at most
        ``limit`` (the newest such ones); only those of ``action`` when given (a name ending
        in ``.*``, such as ``signin.*``, matches every action under that prefix)."""


class SecondFactorStore(Protocol):
    """Second factors (``idp.sso.factors``): TOTP credentials and recovery codes, and what a
    session has proved. ``audit`` rows as in ClientStore. Each ``use_*`` is one atomic step:
    of concurrent callers with the same code or time step, exactly one gets True."""

    async def get_totp(self, user_id: str) -> TotpCredential | None: ...

    async def put_pending_totp(self, credential: TotpCredential) -> bool:
        """Store a pending credential in place of a pending one; False (nothing written)
        when the user already has an active one."""

    async def activate_totp(
        self, user_id: str, step: int, now: float, code_hashes: Sequence[bytes], audit: AuditEntry
    ) -> bool:
        """Make the pending credential active with ``step`` as used, and replace the user's
        recovery codes with ``code_hashes``, in one transaction; False when none was pending."""

    async def use_totp_step(self, user_id: str, step: int) -> bool:
        """Record ``step`` as used if it is later than every step used before, for an active
        credential (RFC 6238 section 5.2: a code is accepted once)."""

    async def delete_second_factors(self, user_id: str, audit: AuditEntry | None = None) -> bool:
        """Forget the user's TOTP credential and recovery codes; whether there was any."""

    async def replace_recovery_codes(
        self, user_id: str, code_hashes: Sequence[bytes], now: float, audit: AuditEntry
    ) -> None:
        """Replace every recovery code of the user with new ones (audited with the change)."""

    async def use_recovery_code(self, user_id: str, code_hash: bytes, now: float) -> bool:
        """Mark an unused recovery code used; False when there is no such unused code."""

    async def count_recovery_codes(self, user_id: str) -> int:
        """How many unused recovery codes the user has."""

    async def reseal_totp_secrets(
        self, reseal: Callable[[TotpCredential], bytes | None], audit: AuditEntry | None = None
    ) -> int:
        """Replace every TOTP secret's seal with ``reseal(credential)`` (None: leave it), in
        one transaction; how many changed (``audit`` is written if any did)."""

    async def record_authentication(
        self, session_id: bytes, amr: Sequence[str], acr: str, now: float, second_factor: bool
    ) -> bool:
        """A live session's user authenticated again now (a step-up or a re-authentication):
        set its amr, acr and auth_time, and second_factor_at if ``second_factor``; False when
        the session is gone or ended."""


class GrantStore(
    CodeStore, DeviceCodeStore, RefreshTokenStore, RevocationStore, UserStore, Protocol
):
    """What the token endpoint's grants use: codes, device codes, refresh tokens,
    revocations and users."""


class Store(
    SchemaStore,
    ClientStore,
    UserStore,
    PasskeyStore,
    SessionStore,
    CodeStore,
    PushedRequestStore,
    DeviceCodeStore,
    ClientAssertionStore,
    InitialAccessTokenStore,
    ConsentStore,
    RefreshTokenStore,
    RevocationStore,
    DpopProofStore,
    LoginCounterStore,
    KeyRingStore,
    AuditStore,
    SecondFactorStore,
    Protocol,
):
    """Everything the service keeps."""
