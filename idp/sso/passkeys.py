"""Passkeys: the WebAuthn Level 2 registration and authentication ceremonies.

The relying party is the issuer: its host is the RP ID (section 5.1.3: a registrable
domain, so an IP address cannot be one) and its origin the only origin accepted. Every
ceremony's challenge (section 13.4.3) is random, kept server side for
:data:`CHALLENGE_LIFETIME` seconds and deleted by the one verification that uses it, so it
is never good twice; it is also bound to the browser that asked for it (the hash of its
CSRF cookie), so it cannot be completed elsewhere. The verification itself (client data,
RP ID hash, flags, signature) is py_webauthn's; this module decides what is asked for and
what a verified response may do:

- registration asks for a discoverable credential with user verification preferred, and
  excludes the user's credentials already registered (section 5.4.3);
- a usernameless sign-in (no user known yet) requires user verification (section 6.2.3),
  finds the credential by its id and checks that its user handle is the user's;
- a check for a known user (a second factor) allows only that user's credentials;
- the signature counter must move forward unless the authenticator keeps none
  (section 7.2 step 21); a counter that goes back is refused and audited as a possibly
  cloned authenticator (section 6.1.1).

A service of the sso floor: the passkey sign-in (:func:`idp.sso.signin.sign_in_with_passkey`),
the second factor after a password (:mod:`idp.sso.factors`, :mod:`idp.sso.second_factor`)
and the account page (:mod:`idp.sso.account`) call it; it calls the store.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass
from urllib.parse import urlsplit

import webauthn
from webauthn.helpers import (
    bytes_to_base64url,
    parse_authentication_credential_json,
    parse_registration_credential_json,
)
from webauthn.helpers.exceptions import (
    InvalidAuthenticationResponse,
    InvalidJSONStructure,
    InvalidRegistrationResponse,
)
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    AuthenticatorTransport,
    CredentialDeviceType,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from idp.clock import Clock
from idp.config import Settings
from idp.sso.text import N_
from idp.store.base import (
    AuditEntry,
    Conflict,
    PasskeyRecord,
    Store,
    UserRecord,
    WebAuthnChallengeRecord,
)

log = logging.getLogger("idp.sso.passkeys")

CHALLENGE_LIFETIME = 300
"""Seconds a ceremony's challenge can be used (once)."""
CEREMONY_TIMEOUT_MS = 120_000
"""The ``timeout`` member of the options (section 5.4, 5.5): a hint to the browser."""
MAX_CREDENTIAL_JSON = 64 * 1024
MAX_PASSKEY_NAME = 60
REGISTER = "register"
AUTHENTICATE = "authenticate"


class PasskeyRefused(Exception):
    """A ceremony's response cannot be accepted; ``message`` is for the person."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason
        """A short word for the audit trail and logs (never the credential itself)."""


NOT_ACCEPTED = N_("That passkey could not be used. Try again, or sign in with your password.")
EXPIRED = N_("The passkey request expired. Try again.")


@dataclass(frozen=True)
class Ceremony:
    """Options for the browser's ``navigator.credentials`` call and the challenge's handle."""

    challenge_id: str
    options_json: str
    """PublicKeyCredentialCreationOptions or RequestOptions as JSON (binary as base64url)."""


@dataclass(frozen=True)
class VerifiedPasskey:
    """A verified assertion: whose it is, the credential (as updated), and what it proves."""

    user: UserRecord
    passkey: PasskeyRecord
    user_verified: bool

    @property
    def key_method(self) -> str:
        """The RFC 8176 (section 2) method of the key: ``swk`` for a backup-eligible (synced)
        passkey, ``hwk`` for a device-bound one."""
        return "swk" if self.passkey.backup_eligible else "hwk"

    @property
    def amr(self) -> tuple[str, ...]:
        """Authentication method references (RFC 8176 section 2) for this assertion.

        ``hwk`` for a device-bound key, whose private part never leaves the authenticator;
        ``swk`` for a backup-eligible (synced) passkey, a key that software copies between
        devices; ``user`` for the user-presence test every assertion carries; ``mfa`` when
        the authenticator verified the user too (PIN or biometric: a second factor on the
        device itself).
        """
        methods = [self.key_method, "user"]
        if self.user_verified:
            methods.append("mfa")
        return tuple(methods)


@dataclass(frozen=True)
class RelyingParty:
    """The WebAuthn relying party the issuer is (section 5.4.2, 5.1.3)."""

    id: str
    name: str
    origin: str


def relying_party(settings: Settings) -> RelyingParty:
    """The RP ID (the issuer's host), the name authenticators show, and the issuer's origin."""
    parts = urlsplit(settings.issuer)
    netloc = parts.netloc
    if (parts.scheme, parts.port) in (("https", 443), ("http", 80)):
        netloc = netloc.rsplit(":", 1)[0]  # a browser's origin never names the default port
    return RelyingParty(
        parts.hostname or "", settings.webauthn_rp_name, f"{parts.scheme}://{netloc}"
    )


def browser_binding_hash(browser: str) -> bytes:
    """What a challenge is bound to: the hash of the browser's random CSRF cookie value."""
    return hashlib.sha256(b"webauthn\x00" + browser.encode()).digest()


async def _new_challenge(
    store: Store, clock: Clock, purpose: str, user_id: str | None, browser: str
) -> WebAuthnChallengeRecord:
    now = clock()
    record = WebAuthnChallengeRecord(
        id=secrets.token_urlsafe(24),
        challenge=secrets.token_bytes(32),
        purpose=purpose,
        user_id=user_id,
        binding=browser_binding_hash(browser),
        created_at=now,
        expires_at=now + CHALLENGE_LIFETIME,
    )
    await store.create_webauthn_challenge(record)
    return record


async def _take_challenge(
    store: Store, clock: Clock, challenge_id: str, purpose: str, browser: str
) -> WebAuthnChallengeRecord:
    """The challenge, consumed: it counts once whether or not the response verifies."""
    found = None
    if challenge_id and len(challenge_id) <= 64:
        found = await store.consume_webauthn_challenge(challenge_id, clock())
    if (
        found is None
        or found.purpose != purpose
        or not secrets.compare_digest(found.binding, browser_binding_hash(browser))
    ):
        raise PasskeyRefused(EXPIRED, "challenge")
    return found


def _transports(names: tuple[str, ...]) -> list[AuthenticatorTransport]:
    known = {t.value: t for t in AuthenticatorTransport}
    return [known[name] for name in names if name in known]


def _descriptors(passkeys: list[PasskeyRecord]) -> list[PublicKeyCredentialDescriptor]:
    return [
        PublicKeyCredentialDescriptor(id=p.credential_id, transports=_transports(p.transports))
        for p in passkeys
    ]


async def user_handle_of(store: Store, user_id: str) -> bytes:
    """The user's WebAuthn user handle (section 14.6.1): 32 random bytes made once, never
    derived from the username, so a credential reveals nothing about the account."""
    existing = await store.get_webauthn_user_handle(user_id)
    if existing is not None:
        return existing
    return await store.ensure_webauthn_user_handle(user_id, secrets.token_bytes(32))


# -- registration (section 7.1) ------------------------------------------------------------


async def begin_registration(
    store: Store, settings: Settings, clock: Clock, user: UserRecord, *, browser: str
) -> Ceremony:
    """Options for ``navigator.credentials.create()`` to add a passkey to ``user``'s account.

    A discoverable credential (resident key) is required so that it can sign in without a
    username; attestation is not asked for (``none``): the service trusts the person who
    registers it, not a make of authenticator.
    """
    rp = relying_party(settings)
    challenge = await _new_challenge(store, clock, REGISTER, user.id, browser)
    options = webauthn.generate_registration_options(
        rp_id=rp.id,
        rp_name=rp.name,
        user_id=await user_handle_of(store, user.id),
        user_name=user.username,
        user_display_name=user.name or user.username,
        challenge=challenge.challenge,
        timeout=CEREMONY_TIMEOUT_MS,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.REQUIRED,
            user_verification=UserVerificationRequirement.PREFERRED,
        ),
        exclude_credentials=_descriptors(await store.list_passkeys(user.id)),
    )
    return Ceremony(challenge.id, webauthn.options_to_json(options))


def passkey_name(raw: str) -> str:
    """The name a person gave a passkey, trimmed; PasskeyRefused when empty or too long."""
    name = " ".join(raw.split())
    if not name or len(name) > MAX_PASSKEY_NAME or not name.isprintable():
        raise PasskeyRefused(
            N_("Give the passkey a name of 1 to %(most)d characters.", most=MAX_PASSKEY_NAME),
            "name",
        )
    return name


async def finish_registration(
    store: Store,
    settings: Settings,
    clock: Clock,
    user: UserRecord,
    *,
    challenge_id: str,
    credential_json: str,
    name: str,
    browser: str,
) -> PasskeyRecord:
    """Verify an attestation response (section 7.1) and store the new credential.

    PasskeyRefused when the name is unusable, the challenge is not this browser's live
    registration challenge for ``user``, the response does not verify, or the credential id
    is already registered (step 22).
    """
    name = passkey_name(name)
    challenge = await _take_challenge(store, clock, challenge_id, REGISTER, browser)
    if challenge.user_id != user.id:
        raise PasskeyRefused(EXPIRED, "challenge")
    rp = relying_party(settings)
    try:
        if len(credential_json) > MAX_CREDENTIAL_JSON:
            raise InvalidJSONStructure("credential too large")
        credential = parse_registration_credential_json(credential_json)
        verified = webauthn.verify_registration_response(
            credential=credential,
            expected_challenge=challenge.challenge,
            expected_rp_id=rp.id,
            expected_origin=rp.origin,
        )
    except (InvalidRegistrationResponse, InvalidJSONStructure, ValueError) as exc:
        log.info("passkey registration refused for user %s: %s", user.id, exc)
        raise PasskeyRefused(NOT_ACCEPTED, "invalid") from None
    now = clock()
    passkey = PasskeyRecord(
        credential_id=verified.credential_id,
        user_id=user.id,
        public_key=verified.credential_public_key,
        sign_count=verified.sign_count,
        transports=tuple(t.value for t in credential.response.transports or ()),
        name=name,
        created_at=now,
        last_used_at=None,
        backup_eligible=verified.credential_device_type is CredentialDeviceType.MULTI_DEVICE,
        backed_up=verified.credential_backed_up,
        aaguid=verified.aaguid,
    )
    audit = AuditEntry(
        now,
        user.username,
        "passkey.add",
        user.id,
        detail={"name": name, "credential": bytes_to_base64url(passkey.credential_id)},
    )
    try:
        await store.add_passkey(passkey, audit)
    except Conflict:
        raise PasskeyRefused(N_("This passkey is already registered."), "duplicate") from None
    return passkey


# -- authentication (section 7.2) ----------------------------------------------------------


async def begin_authentication(
    store: Store,
    settings: Settings,
    clock: Clock,
    *,
    browser: str,
    user: UserRecord | None = None,
) -> Ceremony:
    """Options for ``navigator.credentials.get()``.

    Without ``user`` (a usernameless sign-in) the allow list is empty, so the authenticator
    offers its discoverable credentials, and user verification is required. With ``user``
    (a second factor for someone already identified) only their credentials are allowed,
    and user verification is preferred.
    """
    rp = relying_party(settings)
    challenge = await _new_challenge(store, clock, AUTHENTICATE, user.id if user else None, browser)
    allowed = _descriptors(await store.list_passkeys(user.id)) if user else []
    options = webauthn.generate_authentication_options(
        rp_id=rp.id,
        challenge=challenge.challenge,
        timeout=CEREMONY_TIMEOUT_MS,
        allow_credentials=allowed,
        user_verification=(
            UserVerificationRequirement.PREFERRED if user else UserVerificationRequirement.REQUIRED
        ),
    )
    return Ceremony(challenge.id, webauthn.options_to_json(options))


async def verify_passkey_assertion(
    store: Store,
    settings: Settings,
    clock: Clock,
    *,
    challenge_id: str,
    credential_json: str,
    browser: str,
    user_id: str | None = None,
) -> VerifiedPasskey:
    """Verify an assertion (section 7.2) for a usernameless sign-in or, with ``user_id``, for
    that known user (a second factor); record the credential's use.

    The challenge must be this browser's live authentication challenge, made for the same
    ``user_id`` (None for usernameless). The credential must be registered, to ``user_id``
    when one is given, and its user handle (when returned) must be its user's (step 6);
    the user must exist and be enabled. User verification is required when no user was
    known beforehand. A counter that does not move forward is refused and audited as
    ``passkey.clone_suspected``. PasskeyRefused carries the reason.
    """
    challenge = await _take_challenge(store, clock, challenge_id, AUTHENTICATE, browser)
    if challenge.user_id != user_id:
        raise PasskeyRefused(EXPIRED, "challenge")
    try:
        if len(credential_json) > MAX_CREDENTIAL_JSON:
            raise InvalidJSONStructure("credential too large")
        credential = parse_authentication_credential_json(credential_json)
    except (InvalidJSONStructure, ValueError):
        raise PasskeyRefused(NOT_ACCEPTED, "invalid") from None
    passkey = await store.get_passkey(credential.raw_id)
    if passkey is None:
        raise PasskeyRefused(NOT_ACCEPTED, "unknown_credential")
    if user_id is not None and passkey.user_id != user_id:
        raise PasskeyRefused(NOT_ACCEPTED, "other_user")
    handle = credential.response.user_handle
    if handle is not None and not secrets.compare_digest(
        handle, await user_handle_of(store, passkey.user_id)
    ):
        raise PasskeyRefused(NOT_ACCEPTED, "other_user")
    if handle is None and user_id is None:
        raise PasskeyRefused(NOT_ACCEPTED, "no_user_handle")  # step 6: required then
    rp = relying_party(settings)
    try:
        # The counter is judged below, against the stored one, in the store's atomic update.
        verified = webauthn.verify_authentication_response(
            credential=credential,
            expected_challenge=challenge.challenge,
            expected_rp_id=rp.id,
            expected_origin=rp.origin,
            credential_public_key=passkey.public_key,
            credential_current_sign_count=0,
            require_user_verification=user_id is None,
        )
    except (InvalidAuthenticationResponse, InvalidJSONStructure, ValueError) as exc:
        log.info("passkey assertion refused for user %s: %s", passkey.user_id, exc)
        raise PasskeyRefused(NOT_ACCEPTED, "invalid") from None
    user = await store.get_user(passkey.user_id)
    if user is None or user.disabled:
        raise PasskeyRefused(NOT_ACCEPTED, "user_disabled")
    now = clock()
    count = verified.new_sign_count
    if not await store.record_passkey_use(
        passkey.credential_id, count, verified.credential_backed_up, now
    ):
        await _suspect_clone(store, now, user, passkey, count)
        raise PasskeyRefused(NOT_ACCEPTED, "counter_went_back")
    used = await store.get_passkey(passkey.credential_id)
    return VerifiedPasskey(user, used or passkey, verified.user_verified)


async def _suspect_clone(
    store: Store, now: float, user: UserRecord, passkey: PasskeyRecord, count: int
) -> None:
    """Record a counter that did not move forward (section 6.1.1: maybe a cloned key)."""
    current = await store.get_passkey(passkey.credential_id)
    detail = {
        "credential": bytes_to_base64url(passkey.credential_id),
        "name": passkey.name,
        "stored_count": current.sign_count if current else passkey.sign_count,
        "presented_count": count,
    }
    log.warning(
        "passkey %r of user %s presented counter %d, not above the stored %s: possibly cloned",
        passkey.name,
        user.id,
        count,
        detail["stored_count"],
    )
    await store.record_audit(
        AuditEntry(now, user.username, "passkey.clone_suspected", user.id, "failure", detail)
    )


async def record_passkey_sign_in(
    store: Store,
    now: float,
    verified: VerifiedPasskey | None,
    client_id: str | None,
    reason: str | None = None,
) -> None:
    """Audit one passkey sign-in: ``verified`` on success, else the refusal's ``reason``."""
    if verified is None:
        refused = {"reason": reason or "invalid", "client_id": client_id}
        await store.record_audit(
            AuditEntry(now, "unknown", "passkey.sign_in", "", "failure", refused)
        )
        return
    detail: dict[str, object] = {
        "client_id": client_id,
        "credential": bytes_to_base64url(verified.passkey.credential_id),
        "amr": list(verified.amr),
    }
    user = verified.user
    await store.record_audit(
        AuditEntry(now, user.username, "passkey.sign_in", user.id, "success", detail)
    )
