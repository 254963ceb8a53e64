"""Key operations for administrators: list, ring status, rotate, revoke, import, rewrap.

Each change runs in the store's serialised key-ring transaction behind the key-encryption key
check (:func:`idp.keyring.changes.checked`), audited there as the context's actor; new keys are
generated before the transaction, off the event loop. The answering process's ring is
refreshed before the operation returns.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from idp.admin.clients import reseal_client_secrets
from idp.admin.context import AdminContext, InvalidInput
from idp.keyring import lifecycle
from idp.keyring.changes import checked, ensure_key_rings, ready_factory
from idp.keyring.kek import check_store
from idp.keyring.lifecycle import (
    KeyRingError,
    LifecyclePolicy,
    Rotation,
    Transition,
    expires_at,
    iso,
    next_transitions,
)
from idp.keyring.material import imported_key_record, reseal
from idp.keyring.status import RingStatus, ring_status
from idp.sso.factors import resealed_secret
from idp.store.base import KeyRecord, KeyRingChange

MAX_PEM_BYTES = 64 * 1024
"""Larger than any PEM private key the ring takes; a longer input is refused unread."""

T = TypeVar("T")
ListedKey = tuple[KeyRecord, Transition | None]


@dataclass(frozen=True)
class RingReport:
    """One algorithm's ring in plain words, with the retired keys still published."""

    status: RingStatus
    retired_kids: tuple[str, ...]
    summary: str


def policy(ctx: AdminContext) -> LifecyclePolicy:
    """The configured lifecycle timings."""
    return LifecyclePolicy.from_settings(ctx.settings)


def chosen_algs(ctx: AdminContext, alg: str | None) -> list[str]:
    """``[alg]`` when it is a configured algorithm, every configured one for None."""
    algs = list(ctx.settings.signing_algs)
    if alg is None:
        return algs
    if alg not in algs:
        raise InvalidInput(f"alg must be one of {', '.join(algs)}")
    return [alg]


async def list_keys(ctx: AdminContext) -> list[ListedKey]:
    """Every key with its next scheduled transition (None for a final or waiting key)."""
    keys = await ctx.store.list_keys()
    transitions = next_transitions(keys, policy(ctx))
    return [(key, transitions.get(key.kid)) for key in keys]


async def key_ring_status(ctx: AdminContext) -> list[RingReport]:
    """Per configured algorithm: the next rotation, and whether any verifier could be caught
    out by it, in words."""
    keys = await ctx.store.list_keys()
    rules = policy(ctx)
    reports = []
    for alg in ctx.settings.signing_algs:
        status = ring_status(keys, alg, rules, ctx.clock())
        retired = [k for k in keys if k.alg == alg and k.state == "retired"]
        summary = status.summary
        if retired:
            last = max(expires_at(keys, k, rules) for k in retired)
            summary += (
                f" {len(retired)} retired key(s) stay published for tokens they signed; "
                f"the last leaves JWKS at {iso(last)}."
            )
        reports.append(RingReport(status, tuple(k.kid for k in retired), summary))
    return reports


async def _change(
    ctx: AdminContext, mutate: Callable[[Sequence[KeyRecord]], tuple[KeyRingChange, T]]
) -> T:
    """Run ``mutate`` in the key-ring transaction as the context's actor; its result."""
    outcome: list[T] = []

    def run(keys: Sequence[KeyRecord]) -> KeyRingChange:
        change, result = mutate(keys)
        outcome[:] = [result]
        return change

    await ctx.store.change_key_ring(checked(ctx.settings, run), ctx.acting())
    return outcome[0]


async def rotate_keys(ctx: AdminContext, algs: Sequence[str]) -> list[Rotation]:
    """Rotate each named algorithm's ring at once, in one transaction.

    Each Rotation carries a warning when its promoted key had been published for less than
    IDP_KEY_PREPUBLISH; the rotation happens all the same (the administrator asked).
    """
    new_key = await ready_factory(ctx.settings, ctx.clock, algs)

    def mutate(keys: Sequence[KeyRecord]) -> tuple[KeyRingChange, list[Rotation]]:
        inserts: list[KeyRecord] = []
        updates: list[KeyRecord] = []
        rotations: list[Rotation] = []
        for alg in algs:
            change, rotation = lifecycle.rotate(
                keys, alg, new_key, ctx.clock(), prepublish=ctx.settings.key_prepublish
            )
            inserts.extend(change.inserts)
            updates.extend(change.updates)
            rotations.append(rotation)
        return KeyRingChange(tuple(inserts), tuple(updates)), rotations

    return await _change(ctx, mutate)


async def rotate_now(ctx: AdminContext, alg: str | None = None) -> list[Rotation]:
    """Rotate ``alg`` (default: every configured algorithm) now; a ring not made yet is made.

    What ``idp keys rotate`` and ``POST /admin/keys/rotate`` both do. For a new ring the
    result has no retired kid.
    """
    algs = chosen_algs(ctx, alg)
    keys = await ctx.store.list_keys()
    empty = [a for a in algs if not any(k.alg == a and k.state == "active" for k in keys)]
    if empty:
        keys = await ensure_key_rings(ctx.store, ctx.settings, ctx.clock, ctx.actor, ctx.subject)
    rotated = [a for a in algs if a not in empty]
    results = await rotate_keys(ctx, rotated) if rotated else []
    for new in empty:
        active = next(k for k in keys if k.alg == new and k.state == "active")
        waiting = next(k.kid for k in keys if k.alg == new and k.state == "next")
        results.append(Rotation(new, active.kid, None, waiting))
    await ctx.keys_changed()
    return results


async def revoke_key(ctx: AdminContext, kid: str) -> KeyRecord:
    """Revoke one key by kid; raises NotFound or KeyRingError.

    Revoking a signing or waiting key needs a replacement, generated beforehand.
    """
    found = next((k for k in await ctx.store.list_keys() if k.kid == kid), None)
    needs_key = found is not None and found.state in ("active", "next")
    algs = [found.alg] if found is not None and needs_key else []
    new_key = await ready_factory(ctx.settings, ctx.clock, algs)
    revoked = await _change(ctx, lambda keys: lifecycle.revoke(keys, kid, new_key, ctx.clock()))
    await ctx.keys_changed()
    return revoked


async def import_key(ctx: AdminContext, alg: str, pem: bytes) -> KeyRecord:
    """Add an operator's PEM private key to ``alg``'s ring as a ``next`` key, sealed, audited
    as ``key.import``.

    Raises InvalidInput for an algorithm not configured or an oversized input,
    KeyImportError for an unusable PEM, and KeyRingError when the key is already in the ring
    (whatever its state).
    """
    chosen_algs(ctx, alg)
    if len(pem) > MAX_PEM_BYTES:
        raise InvalidInput("larger than a PEM private key can be")
    record = imported_key_record(alg, pem, ctx.settings.key_encryption_key, ctx.clock())

    def mutate(keys: Sequence[KeyRecord]) -> tuple[KeyRingChange, KeyRecord]:
        existing = next((k for k in keys if k.kid == record.kid), None)
        if existing is not None:
            raise KeyRingError(f"key {record.kid} is already in the ring ({existing.state})")
        return KeyRingChange(inserts=(record,), imported=frozenset({record.kid})), record

    imported = await _change(ctx, mutate)
    await ctx.keys_changed()
    return imported


async def rewrap_keys(ctx: AdminContext, new_key_encryption_key: bytes) -> list[KeyRecord]:
    """Seal every key's private part anew under ``new_key_encryption_key``, in one transaction.

    Each re-sealed key is audited as ``key.rewrap``; states and kids stay as they are. The
    configured key must open every sealed key first (KeyEncryptionKeyMismatch otherwise,
    nothing written). Returns the re-sealed rows. Afterwards only the new key opens the ring:
    every process must be given it (see docs/keys.md). Users' TOTP secrets are re-sealed
    just before, in a transaction of their own (audited ``mfa.totp.rewrap``), and so are the
    secrets of client_secret_jwt clients (each audited ``client.rewrap``).
    """
    old_key = ctx.settings.key_encryption_key
    if hmac.compare_digest(new_key_encryption_key, old_key):
        raise KeyRingError("the new key-encryption key is the one already in use")

    def mutate(keys: Sequence[KeyRecord]) -> tuple[KeyRingChange, list[KeyRecord]]:
        updates = tuple(
            reseal(k, old_key, new_key_encryption_key) for k in keys if k.private_key_sealed
        )
        return KeyRingChange(updates=updates, rewrapped=frozenset(k.kid for k in updates)), list(
            updates
        )

    # TOTP secrets are sealed under the same key (idp.sso.factors). They go first, each only
    # if the old key opens it, so a rewrap cut short between the two steps can be run again;
    # and only once the old key is known to open the ring, which the ring's change rechecks.
    await check_store(ctx.store, ctx.settings)
    await ctx.store.reseal_totp_secrets(
        lambda credential: resealed_secret(credential, old_key, new_key_encryption_key),
        ctx.audit("mfa.totp.rewrap", "totp_credentials"),
    )
    await reseal_client_secrets(ctx, old_key, new_key_encryption_key)
    return await _change(ctx, mutate)
