"""The key ring held in memory: signing keys, verification keys and the JWKS document.

A ring is immutable; a change in the store produces a new ring that replaces the old one
in a single assignment, so a request always sees one consistent ring.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, RSAKey
from joserfc.jws import extract_compact

from idp.keyring.lifecycle import PUBLISHED_STATES, interim_until
from idp.keyring.material import KeyMaterialError, SigningKey, opens, unseal
from idp.keyring.signing import JwsSigner
from idp.store.base import SYSTEM, KeyRecord, KeyRingStore, StoreUnavailable
from idp.store.security_events import SecurityEvent, SecurityEventSink

log = logging.getLogger("idp.keyring")

# Published order: the key that signs now first, then the one that will, then old ones.
_STATE_ORDER = {"active": 0, "next": 1, "retired": 2}


class NoSigningKey(Exception):
    """No active key exists for the algorithm asked for."""


class InvalidSignature(Exception):
    """A token is malformed, names no published key, or its signature does not verify."""


MAX_TOKEN_LENGTH = 16384


@dataclass(frozen=True)
class KeyRing:
    """One consistent view of the keys: who signs, who verifies, and the JWKS bytes."""

    version: int
    signing: dict[str, tuple[str, SigningKey]]
    verification: dict[str, tuple[str, SigningKey]]
    jwks: bytes
    jwks_etag: str
    activated_at: dict[str, float] = field(default_factory=dict)
    """alg -> when its active key started signing (for metrics and rotation schedules)."""
    interim: dict[str, tuple[str, SigningKey, float]] = field(default_factory=dict)
    """Per alg: a just-retired key that signs until the given time instead of an active key
    published too briefly (after a hasty manual rotation), see lifecycle.interim_until."""
    signers: dict[str, JwsSigner] = field(default_factory=dict)
    """kid -> the prepared signer of every key in ``signing`` and ``interim``."""

    @classmethod
    def build(
        cls, records: Sequence[KeyRecord], version: int, kek: bytes, prepublish: float = 0.0
    ) -> KeyRing:
        """Open the signing private keys and prepare the JWKS document (RFC 7517 section 5).

        The JWKS lists every published key (``next`` included, so a verifier that fetches it
        knows the coming key too) in a deterministic order, so that every process holding the
        same rows serves the same bytes and ETag.
        """
        published = sorted(
            (r for r in records if r.state in PUBLISHED_STATES),
            key=lambda r: (_STATE_ORDER[r.state], -(r.activated_at or r.created_at), r.kid),
        )
        # A waiting key that cannot be opened would fail only at its promotion: refuse now.
        for record in published:
            if record.private_key_sealed and not opens(record, kek):
                raise KeyMaterialError(
                    f"{record.state} key {record.kid} cannot be decrypted: "
                    "the key-encryption key does not match"
                )
        signing = {r.alg: (r.kid, unseal(r, kek)) for r in published if r.state == "active"}
        interim: dict[str, tuple[str, SigningKey, float]] = {}
        for record in published:
            if record.state != "retired":
                continue
            until = interim_until(records, record, prepublish)
            if until <= (record.retired_at or record.created_at):
                continue
            if record.alg not in interim or until > interim[record.alg][2]:
                interim[record.alg] = (record.kid, unseal(record, kek), until)
        verification: dict[str, tuple[str, SigningKey]] = {}
        documents = []
        for record in published:
            document = json.loads(record.public_jwk)
            documents.append(document)
            verification[record.kid] = (record.alg, _import_public(document))
        jwks = json.dumps({"keys": documents}, separators=(",", ":")).encode()
        etag = '"' + hashlib.sha256(jwks).hexdigest()[:32] + '"'
        activated_at = {
            r.alg: r.activated_at or r.created_at for r in published if r.state == "active"
        }
        signers = {kid: JwsSigner(alg, kid, key) for alg, (kid, key) in signing.items()}
        signers |= {kid: JwsSigner(alg, kid, key) for alg, (kid, key, _) in interim.items()}
        return cls(version, signing, verification, jwks, etag, activated_at, interim, signers)

    def sign(self, alg: str, claims: dict[str, Any], typ: str, now: float) -> str:
        """A compact JWS (RFC 7515) over the claims, by the active key of ``alg``.

        Right after a hasty manual rotation the key it replaced signs instead, until the new
        key has been published for the pre-publication window (``now``, from the caller's
        clock, decides which).
        """
        interim = self.interim.get(alg)
        if interim is not None and now < interim[2]:
            kid = interim[0]
        else:
            try:
                kid = self.signing[alg][0]
            except KeyError:
                raise NoSigningKey(f"no active {alg} key") from None
        return self.signers[kid].sign(typ, claims)

    def verify(self, token: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """The header and claims of a compact JWS signed by one of our published keys.

        Only published keys (``next``, ``active``, ``retired``) verify: a token signed by a
        revoked or expired key is refused from the moment the ring no longer holds it. Only
        the signature is checked (RFC 7515 section 5.2); claims are the caller's.
        """
        if len(token) > MAX_TOKEN_LENGTH:
            raise InvalidSignature("token too long")
        return verify_signature(token, self.verification)

    def has_signing_keys(self, algs: Sequence[str]) -> bool:
        return all(alg in self.signing for alg in algs)


def verify_signature(
    token: str, verification: Mapping[str, tuple[str, SigningKey]]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The header and claims of a compact JWS whose kid names one of ``verification``'s keys,
    whose alg is that key's own, and whose signature holds (RFC 7515 section 5.2).
    """
    try:
        header = extract_compact(token.encode("ascii")).headers()
    except (JoseError, ValueError, TypeError, UnicodeError):
        raise InvalidSignature("the token is not a compact JWS") from None
    if not isinstance(header, dict):
        raise InvalidSignature("the token is not a compact JWS")
    kid = header.get("kid")
    found = verification.get(kid) if isinstance(kid, str) else None
    if found is None:
        raise InvalidSignature(
            "the token's key is not published: no published key of this server has its kid"
        )
    alg, key = found
    if header.get("alg") != alg:
        raise InvalidSignature("the token's alg does not match its key")
    try:
        claims = json.loads(jws.deserialize_compact(token, key, algorithms=[alg]).payload)
    except (JoseError, ValueError, TypeError):
        raise InvalidSignature("the token's signature does not verify") from None
    if not isinstance(claims, dict):
        raise InvalidSignature("the token's payload is not a JSON object")
    return dict(header), claims


def _import_public(document: dict[str, Any]) -> SigningKey:
    members = {k: v for k, v in document.items() if k not in ("kid", "alg", "use")}
    if document["kty"] == "RSA":
        return RSAKey.import_key(members)
    return ECKey.import_key(members)


class KeyRingService:
    """Keeps the in-memory ring in step with the store.

    The store's change notifications (LISTEN/NOTIFY on PostgreSQL) trigger a reload at once;
    polling the ring version every ``poll_interval`` seconds stays as the fallback. A process
    signs with the ring it holds until it has loaded a change, so it never signs with a key
    before it publishes that key itself.
    """

    def __init__(
        self, store: KeyRingStore, kek: bytes, poll_interval: float = 1.0, prepublish: float = 0.0
    ) -> None:
        self._store = store
        self._kek = kek
        self._poll_interval = poll_interval
        self._prepublish = prepublish
        self._ring: KeyRing | None = None
        self._load_error: str | None = None
        self._changed = asyncio.Event()
        self._reloading = asyncio.Lock()
        self.events: SecurityEventSink | None = None
        """Where a key that cannot be opened is reported (``key.decrypt``); set by the app."""

    @property
    def ring(self) -> KeyRing:
        if self._ring is None:
            raise RuntimeError("the key ring has not been loaded")
        return self._ring

    @property
    def loaded(self) -> bool:
        return self._ring is not None

    @property
    def load_error(self) -> str | None:
        """Why the keys in the store could not be opened at the last load (None: they could).

        The ring held from before keeps serving meanwhile; readiness reports this reason.
        """
        return self._load_error

    def changed(self) -> None:
        """Note that the ring may have changed: the watcher reloads it without waiting."""
        self._changed.set()

    async def load(self) -> KeyRing:
        """Read every key and build a new ring (the version is read first, so never stale)."""
        version = await self._store.key_ring_version()
        records = await self._store.list_keys()
        try:
            ring = KeyRing.build(records, version, self._kek, self._prepublish)
        except KeyMaterialError as exc:
            self._load_error = str(exc)
            await self._report_unopened(records)
            raise
        self._load_error = None
        # Two loads may overlap (the watcher and current()); the older result never wins.
        if self._ring is None or ring.version >= self._ring.version:
            self._ring = ring
        return self._ring

    async def _report_unopened(self, records: Sequence[KeyRecord]) -> None:
        """Report the first published key the key-encryption key does not open."""
        if self.events is None:
            return
        refused = [
            r
            for r in records
            if r.state in PUBLISHED_STATES and r.private_key_sealed and not opens(r, self._kek)
        ]
        kid = refused[0].kid if refused else ""
        detail = {"kind": "signing_key", "unopened": len(refused)}
        event = SecurityEvent(
            "key.decrypt", "failure", SYSTEM, target=kid, detail=detail, repeatable=True
        )
        await self.events.record(event)

    async def current(self) -> KeyRing:
        """The ring as the store has it at this moment, reloaded first if it moved on.

        For checks that must see a revocation at once (introspection), not within the
        watcher's delay: costs one read of the ring version; reloads run one at a time.
        """
        await self.refresh_if_changed()
        return self.ring

    async def refresh_if_changed(self) -> bool:
        """Reload when the store's ring version is newer than the one held; say if it did.

        Costs one read of the ring version; reloads run one at a time.
        """
        version = await self._store.key_ring_version()
        if self._ring is not None and self._ring.version >= version:
            return False
        async with self._reloading:
            if self._ring is not None and self._ring.version >= version:
                return False
            ring = await self.load()
        log.info(
            "key ring reloaded: version %d, %d published keys", ring.version, len(ring.verification)
        )
        return True

    async def watch(self) -> None:
        """Follow the store forever; a store outage is logged once and the held ring serves."""
        listener = asyncio.create_task(
            self._store.watch_key_ring(self.changed), name="idp-key-ring-listener"
        )
        try:
            await self._poll()
        finally:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener

    async def _poll(self) -> None:
        failing = False
        unreadable: str | None = None
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), self._poll_interval)
            self._changed.clear()
            try:
                await self.refresh_if_changed()
                if failing:
                    log.info("key ring watcher: store reachable again")
                failing, unreadable = False, None
            except KeyMaterialError as exc:
                if str(exc) != unreadable:
                    log.error(
                        "key ring watcher: serving held keys, cannot open the store's: %s", exc
                    )
                unreadable = str(exc)
            except StoreUnavailable as exc:
                if not failing:
                    log.warning("key ring watcher: store unavailable, serving held keys: %s", exc)
                failing = True
            except Exception:
                log.exception("key ring watcher: reload failed; serving held keys")
