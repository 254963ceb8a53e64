"""Second factors: TOTP enrolment and checks, recovery codes, and when a sign-in needs one.

What a sign-in proved is told to clients in the RFC 8176 ``amr`` values (``pwd``; ``pwd``,
``otp``, ``mfa`` after a TOTP or recovery code; ``pwd``, ``hwk`` or ``swk``, ``mfa`` after a
passkey, :func:`check_passkey_second_factor`) and in an ``acr`` (OpenID Connect Core 1.0
section 2) of our own naming: ``urn:idp:acr:pwd`` for a password alone and
``urn:idp:acr:mfa`` for a password and a second factor. A sign-in needs a second factor
when the user has one (an active TOTP credential or a passkey), the user or the client is marked as
requiring one, or the request asks for ``urn:idp:acr:mfa`` in ``acr_values``.

TOTP secrets are sealed with AES-256-GCM under the key-encryption key, the user id bound in
as associated data, as signing keys are. Recovery codes carry 80 random bits each, so a
plain SHA-256 (salted with the user id) is as safe to keep as a slow hash would be (nobody
can search 2^80 values) and needs no key that a key-encryption-key change would strand; a
code is found by its hash and used once in one atomic store step.

A service of the sso floor: the sign-in service (:mod:`idp.sso.second_factor`), the account
pages and the admin operations call it.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from urllib.parse import urlsplit

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from webauthn.helpers import bytes_to_base64url

from idp.clock import Clock
from idp.config import Settings
from idp.oauth.acr import ACR_MFA, AMR_MFA
from idp.sso import totp
from idp.sso.passkeys import PasskeyRefused, VerifiedPasskey, verify_passkey_assertion
from idp.sso.security import Attempt, attempt_throttled, locked
from idp.sso.text import N_
from idp.sso.throttle import (
    ThrottleVerdict,
    record_second_factor_success,
    reserve_second_factor_attempt,
)
from idp.store.base import (
    SYSTEM,
    AuditEntry,
    ClientRecord,
    SessionRecord,
    Store,
    TotpCredential,
    UserRecord,
)
from idp.store.security_events import SecurityEvent, SecurityEventSink

RECOVERY_CODE_COUNT = 10
_RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i
_RECOVERY_LENGTH = 16  # 16 symbols of 31: 79 bits
_NONCE_BYTES = 12
_SEAL_VERSION = b"\x01"


class FactorError(Exception):
    """A second-factor change that cannot be made (the message says why, for the person)."""


# -- sealing and hashing ----------------------------------------------------------------


def _aad(user_id: str) -> bytes:
    return f"idp-totp-secret:{user_id}".encode()


def seal_secret(secret: bytes, user_id: str, key_encryption_key: bytes) -> bytes:
    """The TOTP secret encrypted under the key-encryption key (AES-256-GCM, user id bound)."""
    nonce = os.urandom(_NONCE_BYTES)
    sealed = AESGCM(key_encryption_key).encrypt(nonce, secret, _aad(user_id))
    return _SEAL_VERSION + nonce + sealed


def open_secret(credential: TotpCredential, key_encryption_key: bytes) -> bytes | None:
    """The TOTP secret of a credential; None when the seal does not open (another key)."""
    sealed = credential.secret_sealed
    if sealed[:1] != _SEAL_VERSION:
        return None
    nonce, ciphertext = sealed[1 : 1 + _NONCE_BYTES], sealed[1 + _NONCE_BYTES :]
    try:
        return AESGCM(key_encryption_key).decrypt(nonce, ciphertext, _aad(credential.user_id))
    except (InvalidTag, ValueError):
        return None


def resealed_secret(credential: TotpCredential, old_key: bytes, new_key: bytes) -> bytes | None:
    """The credential's secret sealed under ``new_key`` instead of ``old_key``; None when
    ``old_key`` does not open it (already resealed, or sealed under another key)."""
    secret = open_secret(credential, old_key)
    return None if secret is None else seal_secret(secret, credential.user_id, new_key)


def new_recovery_codes() -> list[str]:
    """Ten fresh recovery codes, each 16 symbols (about 79 bits) shown as four groups."""
    codes = []
    for _ in range(RECOVERY_CODE_COUNT):
        raw = "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(_RECOVERY_LENGTH))
        codes.append("-".join(raw[i : i + 4] for i in range(0, _RECOVERY_LENGTH, 4)))
    return codes


def recovery_code_hash(user_id: str, code: str) -> bytes:
    """The stored form of a recovery code: SHA-256 of the user id and the code as typed,
    without dashes, spaces or case."""
    typed = "".join(c for c in code.lower() if c not in "- \t")
    return hashlib.sha256(f"idp-recovery-code\x00{user_id}\x00{typed}".encode()).digest()


def looks_like_recovery_code(code: str) -> bool:
    typed = "".join(c for c in code.lower() if c not in "- \t")
    return len(typed) == _RECOVERY_LENGTH and all(c in _RECOVERY_ALPHABET for c in typed)


def totp_issuer_name(settings: Settings) -> str:
    """The name authenticator apps show for the account: the issuer's host."""
    return urlsplit(settings.issuer).hostname or settings.issuer


# -- when a second factor is needed -------------------------------------------------------


async def has_totp(store: Store, user_id: str) -> bool:
    """Whether the user has an active TOTP credential (and so recovery codes)."""
    credential = await store.get_totp(user_id)
    return credential is not None and credential.state == "active"


async def has_passkey(store: Store, user_id: str) -> bool:
    """Whether the user has registered a passkey."""
    return bool(await store.list_passkeys(user_id))


async def has_second_factor(store: Store, user_id: str) -> bool:
    """Whether the user has a second factor to give after the password: an active TOTP
    credential or a passkey (WebAuthn Level 2 section 7.2, for a known user)."""
    return await has_totp(store, user_id) or await has_passkey(store, user_id)


async def second_factor_required(
    store: Store, user: UserRecord, client: ClientRecord, acr_values: Sequence[str]
) -> bool:
    """Whether this sign-in needs a second factor: the user has one, the user or the client
    requires one, or the request asks for ``urn:idp:acr:mfa`` (OIDC Core 3.1.2.1)."""
    if user.mfa_required or client.require_mfa or ACR_MFA in acr_values:
        return True
    return await has_second_factor(store, user.id)


def session_has_second_factor(
    session: SessionRecord, now: float, max_age: int | None = None
) -> bool:
    """Whether the session proved a second factor, within ``max_age`` seconds if given."""
    if session.acr != ACR_MFA or session.second_factor_at is None:
        return False
    return max_age is None or now - session.second_factor_at <= max_age


# -- checking a code ----------------------------------------------------------------------


class Check(Enum):
    """What checking a typed second factor came to."""

    TOTP = "totp"
    RECOVERY_CODE = "recovery_code"
    PASSKEY = "passkey"
    WRONG = "wrong"
    THROTTLED = "throttled"


@dataclass(frozen=True)
class CheckResult:
    check: Check
    retry_after: float = 0.0
    passkey: VerifiedPasskey | None = None
    """The verified assertion, for :data:`Check.PASSKEY`."""
    reason: str = ""
    """Why a passkey was refused (:class:`idp.sso.passkeys.PasskeyRefused`'s reason)."""

    @property
    def accepted(self) -> bool:
        return self.check in (Check.TOTP, Check.RECOVERY_CODE, Check.PASSKEY)


async def check_second_factor(
    store: Store,
    settings: Settings,
    clock: Clock,
    user: UserRecord,
    code: str,
    client_address: str,
    *,
    events: SecurityEventSink,
    client: str | None = None,
    purpose: str = "authorize",
) -> CheckResult:
    """Check a typed TOTP code or recovery code of ``user``, throttled and reported.

    The attempt is counted by the throttle before anything is checked (as the password's
    is); a 6-digit code must match a time step within one step of now that was not accepted
    before (RFC 6238 section 5.2), anything else is looked up as an unused recovery code.
    Every outcome is a security event (``mfa.verify``, or ``signin.throttled``; a recovery
    code also ``mfa.recovery_code.use``), for ``client`` when a client asked.
    """
    seen = _Seen(events, store, user, client, client_address, purpose)
    who = {"username": user.username, "ip": client_address}
    verdict = await reserve_second_factor_attempt(store, settings, clock, **who)
    if not verdict.allowed:
        await seen.throttled(verdict)
        return CheckResult(Check.THROTTLED, verdict.delay)
    result = await _check_code(store, settings, clock, user, code, seen)
    if result is Check.WRONG:
        await seen.failed(verdict, reason="wrong_code")
        return CheckResult(Check.WRONG)
    await record_second_factor_success(store, settings, clock, **who)
    await seen.report(VERIFY, "success", method=result.value)
    if result is Check.RECOVERY_CODE:
        left = await store.count_recovery_codes(user.id)
        await seen.report("mfa.recovery_code.use", "success", remaining=left)
    return CheckResult(result)


async def check_passkey_second_factor(
    store: Store,
    settings: Settings,
    clock: Clock,
    user: UserRecord,
    *,
    challenge_id: str,
    credential_json: str,
    browser: str,
    client_address: str,
    events: SecurityEventSink,
    client: str | None = None,
) -> CheckResult:
    """Check a passkey assertion of ``user`` as a second factor, throttled and reported as a
    code is (:func:`check_second_factor`).

    Only ``user``'s own credentials verify (WebAuthn Level 2 section 7.2 with the user known
    beforehand, :func:`idp.sso.passkeys.verify_passkey_assertion`); the challenge is used
    once whatever the outcome. Reported as ``mfa.verify`` with ``method`` ``passkey``.
    """
    seen = _Seen(events, store, user, client, client_address, "authorize")
    who = {"username": user.username, "ip": client_address}
    verdict = await reserve_second_factor_attempt(store, settings, clock, **who)
    if not verdict.allowed:
        await seen.throttled(verdict, step="passkey")
        return CheckResult(Check.THROTTLED, verdict.delay)
    try:
        verified = await verify_passkey_assertion(
            store,
            settings,
            clock,
            challenge_id=challenge_id,
            credential_json=credential_json,
            browser=browser,
            user_id=user.id,
        )
    except PasskeyRefused as exc:
        await seen.failed(verdict, method="passkey", reason=exc.reason)
        return CheckResult(Check.WRONG, reason=exc.reason)
    await record_second_factor_success(store, settings, clock, **who)
    credential = bytes_to_base64url(verified.passkey.credential_id)
    await seen.report(VERIFY, "success", method="passkey", credential=credential)
    return CheckResult(Check.PASSKEY, passkey=verified)


async def _check_code(
    store: Store, settings: Settings, clock: Clock, user: UserRecord, code: str, seen: _Seen
) -> Check:
    """Which kind of code ``code`` is and whether it was accepted (used up) just now."""
    if len(code) > 64:
        return Check.WRONG
    if totp.normalized(code) is not None:
        credential = await store.get_totp(user.id)
        if credential is None or credential.state != "active":
            return Check.WRONG
        secret = open_secret(credential, settings.key_encryption_key)
        if secret is None:
            await seen.unopened()
        step = totp.matching_step(secret, code, clock()) if secret else None
        if step is not None and await store.use_totp_step(user.id, step):
            return Check.TOTP
        return Check.WRONG
    if looks_like_recovery_code(code) and await store.use_recovery_code(
        user.id, recovery_code_hash(user.id, code), clock()
    ):
        return Check.RECOVERY_CODE
    return Check.WRONG


VERIFY = "mfa.verify"


@dataclass(frozen=True)
class _Seen:
    """One second-factor attempt's reporting: who, for which client, from where."""

    events: SecurityEventSink
    store: Store
    user: UserRecord
    client: str | None
    address: str
    purpose: str

    async def report(
        self, action: str, outcome: str, *, repeatable: bool = False, **detail: object
    ) -> None:
        event = SecurityEvent(
            action,
            outcome,
            self.user.username,
            self.user.id,
            self.client,
            self.address,
            {"purpose": self.purpose, **detail},
            repeatable,
        )
        await self.events.record(event)

    @property
    def attempt(self) -> Attempt:
        return Attempt(self.purpose, self.address, self.client)

    async def throttled(self, verdict: ThrottleVerdict, step: str = "second_factor") -> None:
        await attempt_throttled(
            self.events, self.store, self.attempt, verdict=verdict, step=step, user=self.user
        )

    async def failed(self, verdict: ThrottleVerdict, **detail: object) -> None:
        """A wrong factor (counted per address and minute) and the locks it brought on."""
        await self.report(VERIFY, "failure", repeatable=True, **detail)
        await locked(self.events, self.attempt, self.user.username, self.user.id, verdict)

    async def unopened(self) -> None:
        """The key-encryption key does not open the user's TOTP secret."""
        event = SecurityEvent(
            "key.decrypt",
            "failure",
            SYSTEM,
            self.user.id,
            self.client,
            self.address,
            {"kind": "totp_secret"},
            repeatable=True,
        )
        await self.events.record(event)


# -- enrolment ----------------------------------------------------------------------------


@dataclass(frozen=True)
class TotpEnrolment:
    """What the enrolment page shows: the secret as text and as an otpauth:// URI."""

    secret: str
    uri: str


async def begin_totp(
    store: Store, settings: Settings, clock: Clock, user: UserRecord
) -> TotpEnrolment | None:
    """The pending TOTP credential to show (a new one unless one is pending already); None
    when the user already has an active one."""
    credential = await store.get_totp(user.id)
    if credential is not None and credential.state == "active":
        return None
    secret = open_secret(credential, settings.key_encryption_key) if credential else None
    if secret is None:
        secret = totp.new_secret()
        sealed = seal_secret(secret, user.id, settings.key_encryption_key)
        pending = TotpCredential(user.id, sealed, "pending", clock())
        if not await store.put_pending_totp(pending):
            return None
    uri = totp.provisioning_uri(secret, user.username, totp_issuer_name(settings))
    return TotpEnrolment(totp.base32_secret(secret), uri)


async def confirm_totp(
    store: Store,
    settings: Settings,
    clock: Clock,
    user: UserRecord,
    code: str,
    session_id: bytes | None = None,
) -> list[str]:
    """Activate the pending credential with a first right code; the new recovery codes.

    Raises FactorError when nothing is pending or the code is wrong. The time step of the
    first code counts as used. Audited as ``mfa.totp.enable``. The session ``session_id``
    it was confirmed in has now proved a second factor (``urn:idp:acr:mfa``).
    """
    credential = await store.get_totp(user.id)
    if credential is None or credential.state != "pending":
        raise FactorError(N_("There is no authenticator waiting to be confirmed. Start again."))
    secret = open_secret(credential, settings.key_encryption_key)
    now = clock()
    step = totp.matching_step(secret, code, now) if secret else None
    if step is None:
        raise FactorError(N_("That code is not right. Type the code your app shows now."))
    codes = new_recovery_codes()
    hashes = [recovery_code_hash(user.id, c) for c in codes]
    audit = AuditEntry(now, f"user:{user.id}", "mfa.totp.enable", user.id)
    if not await store.activate_totp(user.id, step, now, hashes, audit):
        raise FactorError(N_("There is no authenticator waiting to be confirmed. Start again."))
    if session_id is not None:
        await store.record_authentication(session_id, AMR_MFA, ACR_MFA, now, second_factor=True)
    return codes


async def regenerate_recovery_codes(store: Store, clock: Clock, user: UserRecord) -> list[str]:
    """Ten new recovery codes in place of the old ones (audited ``mfa.recovery_codes.new``);
    FactorError when the user has no active TOTP credential."""
    if not await has_totp(store, user.id):
        raise FactorError(N_("Set up an authenticator app first."))
    codes = new_recovery_codes()
    hashes = [recovery_code_hash(user.id, c) for c in codes]
    audit = AuditEntry(clock(), f"user:{user.id}", "mfa.recovery_codes.new", user.id)
    await store.replace_recovery_codes(user.id, hashes, clock(), audit)
    return codes


async def remove_second_factors(store: Store, user_id: str, audit: AuditEntry | None) -> bool:
    """Forget the user's TOTP credential and recovery codes (audited when there were any)."""
    return await store.delete_second_factors(user_id, audit)


@dataclass(frozen=True)
class FactorStatus:
    """A user's second factors as administrators and the account pages see them."""

    totp: str
    """``none``, ``pending`` or ``active``."""
    recovery_codes_left: int
    required: bool


async def factor_status(store: Store, user: UserRecord) -> FactorStatus:
    """Which second factors the user has, how many recovery codes are left, and whether
    the user must use one."""
    credential = await store.get_totp(user.id)
    state = credential.state if credential is not None else "none"
    left = await store.count_recovery_codes(user.id)
    return FactorStatus(state, left, user.mfa_required)
