"""The records the store keeps and hands back: frozen dataclasses, one per table.

A record's fields are its table's columns, by name and in meaning (``idp.store.codec`` reads
and writes rows from the fields alone), so adding a column means adding a field here and a
migration under ``migrations/``. Positional order is part of the interface: keep new fields last.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum, StrEnum
from typing import Any

SYSTEM = "system"
"""The actor name of changes the server makes on its own (scheduled rotations, start-up)."""


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
    previous_secret_hash: bytes | None = field(default=None, repr=False)
    """The secret replaced by a rotation, still accepted until ``previous_secret_expires_at``."""
    previous_secret_expires_at: float | None = None
    require_mfa: bool = False
    """Every sign-in for this client needs a second factor (acr ``urn:idp:acr:mfa``)."""
    require_par: bool = False
    """Authorization requests only by pushed request (RFC 9126 section 6)."""
    jwks: str | None = None
    """The client's public keys as a JWK Set document (private_key_jwt, RFC 7523)."""
    jwks_uri: str | None = None
    """Where the client publishes its public keys instead (RFC 7591 section 2)."""
    require_dpop: bool = False
    """Every token request of this client must carry a DPoP proof (RFC 9449 section 5.2)."""
    secret_sealed: bytes | None = field(default=None, repr=False)
    """client_secret_jwt only: the secret itself, sealed under the key-encryption key (AES-256-GCM,
    client id bound), as the HMAC key of its assertions (RFC 7523 section 2.2)."""
    registration_token_hash: bytes | None = field(default=None, repr=False)
    """Registered at /register: the SHA-256 of its registration access token (RFC 7592
    section 3), which reads, replaces and deletes its registration; None for other clients."""
    token_exchange_subject_clients: tuple[str, ...] = ()
    """Token exchange (RFC 8693): the clients whose tokens this client may exchange; empty: any."""

    @property
    def is_public(self) -> bool:
        return self.token_endpoint_auth_method == "none"


@dataclass(frozen=True)
class InitialAccessTokenRecord:
    """An initial access token (RFC 7591 section 3): lets its bearer register clients at
    /register until it expires or its uses run out (``uses_left`` None: no limit)."""

    id: str
    token_hash: bytes = field(repr=False)
    created_at: float
    expires_at: float
    uses_left: int | None = None


@dataclass(frozen=True)
class InitialAccessTokenSummary:
    """What administrators see of an initial access token (RFC 7591 section 3): never its
    hash. ``uses_left`` None: no limit."""

    id: str
    created_at: float
    expires_at: float
    uses_left: int | None = None


@dataclass(frozen=True)
class PushedRequestRecord:
    """A pushed authorization request (RFC 9126 section 2), validated when it was pushed.

    Kept under the SHA-256 of its ``request_uri`` until /authorize uses it once or it
    expires; ``request`` is the validated request as a JSON document.
    """

    request_uri_hash: bytes = field(repr=False)
    client_id: str
    request: str
    created_at: float
    expires_at: float


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
    mfa_required: bool = False
    """Every sign-in of this user needs a second factor."""


@dataclass(frozen=True)
class PasskeyRecord:
    """A WebAuthn public-key credential of a user (WebAuthn Level 2 section 6.1: the
    credential id, its COSE public key and signature counter; the backup flags of 6.1.3)."""

    credential_id: bytes
    user_id: str
    public_key: bytes = field(repr=False)
    sign_count: int
    transports: tuple[str, ...]
    name: str
    """What the person called it when they registered it."""
    created_at: float
    last_used_at: float | None
    backup_eligible: bool
    backed_up: bool
    aaguid: str


@dataclass(frozen=True)
class WebAuthnChallengeRecord:
    """A ceremony's challenge (WebAuthn Level 2 section 13.4.3), kept until it is used once.

    ``purpose`` is ``register`` or ``authenticate``; ``user_id`` the user a registration or
    a second-factor check is for (None for a usernameless sign-in); ``binding`` the hash of
    what ties it to one browser.
    """

    id: str
    challenge: bytes = field(repr=False)
    purpose: str
    user_id: str | None
    binding: bytes = field(repr=False)
    created_at: float
    expires_at: float


@dataclass(frozen=True)
class ConsentRecord:
    """The scopes a user has granted a client (OpenID Connect Core 1.0 section 3.1.2.4)."""

    user_id: str
    client_id: str
    scope: tuple[str, ...]
    granted_at: float


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
    amr: tuple[str, ...] = ("pwd",)
    """How the user authenticated (RFC 8176 section 2 values)."""
    acr: str | None = None
    """The authentication context class reached (``idp.sso.factors`` names them)."""
    second_factor_at: float | None = None
    """When a second factor was last checked in this session."""

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
    amr: tuple[str, ...] = ()
    acr: str | None = None
    resources: tuple[str, ...] = ()
    """The resource indicators accepted with the request (RFC 8707 section 2): the audiences
    of the code's access tokens, which the token request may narrow."""
    dpop_jkt: str | None = None
    """The JWK thumbprint of the DPoP key the code is bound to (RFC 9449 section 10): its
    redemption must prove possession of that key."""


class DeviceCodeStatus(StrEnum):
    """Where a device code is in its life (RFC 8628 section 3.5)."""

    PENDING = "pending"
    APPROVED = "approved"
    DENIED = "denied"
    REDEEMED = "redeemed"


@dataclass(frozen=True)
class DeviceCodeRecord:
    """A device authorization request (RFC 8628 section 3.2); only the SHA-256 of its device
    code and of its normalised user code are kept.

    ``id`` is a random row id and the id of the grant, as an authorization code's is.
    ``poll_interval`` is the seconds the client must wait between polls (raised on each
    slow_down, section 3.5); ``last_polled_at`` when it last polled. The person's decision
    sets ``status``, and on approval the sign-in it was made in (user, sid, auth_time, amr,
    acr); a redemption sets ``redeemed_at``.
    """

    id: str
    device_code_hash: bytes = field(repr=False)
    user_code_hash: bytes = field(repr=False)
    client_id: str
    scope: tuple[str, ...]
    created_at: float
    expires_at: float
    poll_interval: int
    status: str = "pending"
    last_polled_at: float | None = None
    user_id: str | None = None
    sid: str | None = None
    auth_time: float | None = None
    amr: tuple[str, ...] = ()
    acr: str | None = None
    decided_at: float | None = None
    redeemed_at: float | None = None


@dataclass(frozen=True)
class DeviceApproval:
    """The person's decision on a device code: approved or denied, and the signed-in session
    it was made in (RFC 8628 section 3.3)."""

    approved: bool
    user_id: str
    sid: str
    auth_time: float
    amr: tuple[str, ...]
    acr: str | None
    now: float


DeviceCodePoll = Callable[[DeviceCodeRecord], DeviceCodeRecord]
"""Given a device code as stored, the row to write in its place (a poll, RFC 8628 3.4)."""


@dataclass(frozen=True)
class TotpCredential:
    """A user's TOTP shared secret (RFC 6238), sealed under the key-encryption key.

    ``pending`` until the user confirms a first code, then ``active``; ``last_step`` is the
    newest time step accepted, so no code is accepted twice (RFC 6238 section 5.2).
    """

    user_id: str
    secret_sealed: bytes = field(repr=False)
    state: str
    created_at: float
    activated_at: float | None = None
    last_step: int | None = None


@dataclass(frozen=True)
class RecoveryCode:
    """One single-use recovery code: only a hash of it is kept."""

    user_id: str
    code_hash: bytes = field(repr=False)
    created_at: float
    used_at: float | None = None


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
    dpop_jkt: str | None = None
    """The JWK thumbprint of the DPoP key the family is bound to (RFC 9449 section 5: public
    clients only); every refresh must prove possession of that key."""
    resources: tuple[str, ...] = ()
    """The resource indicators of the authorization request the family comes from (RFC
    8707): the audiences of every refresh's access token, which a refresh may narrow."""


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
class RefreshRotationRequest:
    """A presented refresh token to rotate: its hash, the client presenting it, the successor
    to insert, the time, and how long a just-rotated token may still get a sibling."""

    token_hash: bytes = field(repr=False)
    client_id: str
    successor: NewRefreshToken
    now: float
    reuse_grace: float


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
    """``next``, ``active``, ``retired``, ``revoked`` or ``expired`` (see idp.keyring.lifecycle)."""
    public_jwk: str
    private_key_sealed: bytes | None = field(repr=False)
    """None once the key is revoked or expired: its private part is erased."""
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
