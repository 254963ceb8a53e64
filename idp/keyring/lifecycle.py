"""Key-ring transitions as pure functions: given the rows and the time, say what changes.

States (per algorithm): ``next`` is published but does not sign yet, ``active`` signs,
``retired`` stays published so tokens it signed keep verifying, ``expired`` has left JWKS
after every token it signed has expired (row kept, private part erased), ``revoked`` is
gone from JWKS at once and its private part is erased. Each function returns a
KeyRingChange that the store applies in one serialised transaction.

The timeline of a key (RFC 7517 section 5 sets, cached by verifiers for IDP_JWKS_MAX_AGE):
created as ``next`` and published; promoted to ``active`` by the scheduled rotation once
``rotation_interval`` has passed since the current active key was activated *and* the key
has been published for ``prepublish``; ``retired`` at the following rotation; ``expired``
at ``retired_at + retention`` where retention is the longest token lifetime plus the JWKS
cache lifetime.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from idp.config import Settings
from idp.store.base import KeyRecord, KeyRingChange, NotFound

NewKey = Callable[[str, str], KeyRecord]
"""Makes a new key row: (alg, state) -> KeyRecord."""

PUBLISHED_STATES = ("next", "active", "retired")


class KeyRingError(Exception):
    """A key-ring operation that cannot be done as asked (the message says why)."""


@dataclass(frozen=True)
class Rotation:
    """Outcome of a rotation of one algorithm's ring."""

    alg: str
    active_kid: str
    retired_kid: str | None
    next_kid: str
    warning: str | None = None
    """Set when the promoted key had been published for less than the pre-publication window."""


@dataclass(frozen=True)
class LifecyclePolicy:
    """The durations (seconds) that drive scheduled transitions."""

    rotation_interval: float
    prepublish: float
    retention: float
    """How long a retired key stays published: longest token lifetime + JWKS cache lifetime."""

    @classmethod
    def from_settings(cls, settings: Settings) -> LifecyclePolicy:
        longest_token = max(settings.access_token_ttl, settings.id_token_ttl)
        return cls(
            rotation_interval=settings.key_rotation_interval,
            prepublish=settings.key_prepublish,
            retention=longest_token + settings.jwks_max_age,
        )


def keys_in(keys: Sequence[KeyRecord], alg: str, state: str) -> list[KeyRecord]:
    return [k for k in keys if k.alg == alg and k.state == state]


def ensure_rings(keys: Sequence[KeyRecord], algs: Sequence[str], new_key: NewKey) -> KeyRingChange:
    """Give every algorithm that lacks one an active key and a next key."""
    inserts: list[KeyRecord] = []
    for alg in algs:
        if not keys_in(keys, alg, "active"):
            inserts.append(new_key(alg, "active"))
        if not keys_in(keys, alg, "next"):
            inserts.append(new_key(alg, "next"))
    return KeyRingChange(inserts=tuple(inserts))


def rotate(
    keys: Sequence[KeyRecord],
    alg: str,
    new_key: NewKey,
    now: float,
    prepublish: float | None = None,
) -> tuple[KeyRingChange, Rotation]:
    """Promote the oldest ``next`` key (or a new one), retire the active one, add a new ``next``.

    With ``prepublish``, the Rotation carries a warning when the promoted key has been
    published for less than that: a verifier whose JWKS cache predates the key may meet its
    kid before its cache expires. The rotation happens all the same.
    """
    updates: list[KeyRecord] = []
    inserts: list[KeyRecord] = []
    current = keys_in(keys, alg, "active")
    retired_kid = None
    for old in current:
        updates.append(replace(old, state="retired", retired_at=now))
        retired_kid = old.kid
    waiting = sorted(keys_in(keys, alg, "next"), key=lambda k: (k.created_at, k.kid))
    if waiting:
        promoted = replace(waiting[0], state="active", activated_at=now)
        updates.append(promoted)
    else:
        promoted = new_key(alg, "active")
        inserts.append(promoted)
    if len(waiting) <= 1:
        fresh_next = new_key(alg, "next")
        inserts.append(fresh_next)
        next_kid = fresh_next.kid
    else:
        next_kid = waiting[1].kid
    change = KeyRingChange(inserts=tuple(inserts), updates=tuple(updates))
    warning = None
    if prepublish is not None:
        published_for = now - promoted.created_at if waiting else 0.0
        if published_for < prepublish:
            warning = (
                f"{alg}: the new active key {promoted.kid} had been published for only "
                f"{human_duration(published_for)} of the {human_duration(prepublish)} "
                f"pre-publication window; the key it replaces keeps signing until "
                f"{iso(promoted.created_at + prepublish)} where it can (it was pre-published), "
                "otherwise verifiers whose cached JWKS predates the new key may refuse its tokens"
            )
    return change, Rotation(alg, promoted.kid, retired_kid, next_kid, warning)


def revoke(
    keys: Sequence[KeyRecord], kid: str, new_key: NewKey, now: float
) -> tuple[KeyRingChange, KeyRecord]:
    """Revoke one key at once; if it was active, the ``next`` key (or a new one) takes over.

    The revoked key's private part is erased so it can never sign again. The ring keeps a
    ``next`` key afterwards, so the following rotation is pre-published as usual.
    """
    target = next((k for k in keys if k.kid == kid), None)
    if target is None:
        raise NotFound(f"no key with kid {kid!r}")
    if target.state in ("revoked", "expired"):
        raise KeyRingError(f"key {kid} is already {target.state}")
    revoked = replace(target, state="revoked", revoked_at=now, private_key_sealed=None)
    updates = [revoked]
    inserts: list[KeyRecord] = []
    waiting = sorted(
        (k for k in keys_in(keys, target.alg, "next") if k.kid != kid),
        key=lambda k: (k.created_at, k.kid),
    )
    if target.state == "active":
        if waiting:
            updates.append(replace(waiting.pop(0), state="active", activated_at=now))
        else:
            inserts.append(new_key(target.alg, "active"))
    if not waiting:
        inserts.append(new_key(target.alg, "next"))
    return KeyRingChange(inserts=tuple(inserts), updates=tuple(updates)), revoked


def settings_warnings(settings: Settings) -> list[str]:
    """Lifecycle settings that work but weaken the promise to verifiers, in words."""
    found = []
    if settings.key_prepublish < settings.jwks_max_age:
        found.append(
            f"IDP_KEY_PREPUBLISH ({human_duration(settings.key_prepublish)}) is shorter than "
            f"IDP_JWKS_MAX_AGE ({human_duration(settings.jwks_max_age)}): a verifier may meet "
            "a new kid before its cached JWKS expires"
        )
    if settings.key_prepublish > settings.key_rotation_interval:
        found.append(
            f"IDP_KEY_PREPUBLISH ({human_duration(settings.key_prepublish)}) is longer than "
            f"IDP_KEY_ROTATION_INTERVAL ({human_duration(settings.key_rotation_interval)}): "
            "keys rotate only once their successor has been published that long"
        )
    return found


# -- scheduled transitions ------------------------------------------------------------------


@dataclass(frozen=True)
class Transition:
    """The next scheduled change of one key: ``activate``, ``retire`` or ``expire`` at ``at``."""

    kid: str
    alg: str
    name: str
    at: float


def waiting_keys(keys: Sequence[KeyRecord], alg: str) -> list[KeyRecord]:
    return sorted(keys_in(keys, alg, "next"), key=lambda k: (k.created_at, k.kid))


def rotation_due_at(active: KeyRecord, policy: LifecyclePolicy) -> float:
    """When the active key has served its rotation interval."""
    return (active.activated_at or active.created_at) + policy.rotation_interval


def rotation_at(keys: Sequence[KeyRecord], alg: str, policy: LifecyclePolicy) -> float | None:
    """When the scheduler will rotate ``alg``: when due *and* the next key is pre-published.

    None when the ring has no active key or no ``next`` key to promote (the scheduler then
    adds a ``next`` key first, which must itself be pre-published).
    """
    active = keys_in(keys, alg, "active")
    waiting = waiting_keys(keys, alg)
    if not active or not waiting:
        return None
    return max(rotation_due_at(active[0], policy), waiting[0].created_at + policy.prepublish)


def successor(keys: Sequence[KeyRecord], key: KeyRecord) -> KeyRecord | None:
    """The key that became active when ``key`` retired (in the same change)."""
    if key.retired_at is None:
        return None
    return next(
        (
            k
            for k in keys
            if k.alg == key.alg and k.kid != key.kid and k.activated_at == key.retired_at
        ),
        None,
    )


def interim_until(keys: Sequence[KeyRecord], retired: KeyRecord, prepublish: float) -> float:
    """Until when a just-retired key keeps signing in place of a successor published too briefly.

    Normally a key stops signing when it retires. After a hasty manual rotation the new
    active key may have been published for less than ``prepublish``; every process then
    keeps signing with the key it replaced (if that one had itself been pre-published)
    until the new key has been, so that no verifier meets a kid it could not have fetched.
    """
    retired_at = retired.retired_at or retired.created_at
    if retired.created_at + prepublish > retired_at or retired.private_key_sealed is None:
        return retired_at
    after = successor(keys, retired)
    if after is None:
        return retired_at
    return max(retired_at, after.created_at + prepublish)


def expires_at(keys: Sequence[KeyRecord], retired: KeyRecord, policy: LifecyclePolicy) -> float:
    """When a retired key leaves JWKS: the last moment it signed + retention."""
    return interim_until(keys, retired, policy.prepublish) + policy.retention


def next_transitions(keys: Sequence[KeyRecord], policy: LifecyclePolicy) -> dict[str, Transition]:
    """Each key's next scheduled transition, by kid; keys with none are left out.

    The active key retires and the oldest ``next`` key activates at the rotation time; a
    retired key expires at ``retired_at + retention``. Revoked and expired keys are final,
    and further ``next`` keys wait behind the oldest one.
    """
    found: dict[str, Transition] = {}
    for alg in sorted({k.alg for k in keys}):
        at = rotation_at(keys, alg, policy)
        if at is not None:
            active, candidate = keys_in(keys, alg, "active")[0], waiting_keys(keys, alg)[0]
            found[active.kid] = Transition(active.kid, alg, "retire", at)
            found[candidate.kid] = Transition(candidate.kid, alg, "activate", at)
        for retired in keys_in(keys, alg, "retired"):
            expires = expires_at(keys, retired, policy)
            found[retired.kid] = Transition(retired.kid, alg, "expire", expires)
    return found


@dataclass(frozen=True)
class ScheduledPass:
    """What one scheduler pass changes, in words: done (changed) and waiting (why not yet)."""

    change: KeyRingChange
    done: tuple[str, ...] = ()
    waiting: tuple[tuple[str, str], ...] = ()
    """(what waits, why): the first item names the alg and key, the second says why in words."""
    rotations: tuple[Rotation, ...] = field(default=())


def scheduled_pass(
    keys: Sequence[KeyRecord],
    algs: Iterable[str],
    policy: LifecyclePolicy,
    new_key: NewKey,
    now: float,
) -> ScheduledPass:
    """Every transition due at ``now``: rotations of ``algs``, expiries of retired keys.

    A rotation is due when ``now >= activated_at + rotation_interval`` of the active key;
    it promotes the oldest ``next`` key only if that key has been published (since its
    ``created_at``) for at least ``prepublish``, otherwise it waits and says why. A ring
    with an active key but no ``next`` key gets one at once. Retired keys past
    ``retired_at + retention`` become ``expired`` with their private part erased (later if
    a hasty manual rotation left them signing for a while after retirement, see
    :func:`interim_until`).
    """
    inserts: list[KeyRecord] = []
    updates: list[KeyRecord] = []
    done: list[str] = []
    waiting: list[tuple[str, str]] = []
    rotations: list[Rotation] = []
    for alg in algs:
        active = keys_in(keys, alg, "active")
        if not active:
            waiting.append((alg, f"{alg}: no active key yet; the server creates one at start"))
            continue
        candidates = waiting_keys(keys, alg)
        if not candidates:
            fresh = new_key(alg, "next")
            inserts.append(fresh)
            done.append(f"{alg}: published new next key {fresh.kid}")
            continue
        if now < rotation_due_at(active[0], policy):
            continue
        candidate = candidates[0]
        ready_at = candidate.created_at + policy.prepublish
        if now < ready_at:
            reason = (
                f"{alg}: rotation is due but next key {candidate.kid} has been published for "
                f"only {human_duration(now - candidate.created_at)} of "
                f"{human_duration(policy.prepublish)}; it will be promoted at {iso(ready_at)}"
            )
            waiting.append((f"{alg}:{candidate.kid}", reason))
            continue
        change, rotation = rotate(keys, alg, new_key, now)
        inserts.extend(change.inserts)
        updates.extend(change.updates)
        rotations.append(rotation)
        done.append(
            f"{alg}: rotated: active {rotation.active_kid}, retired {rotation.retired_kid}, "
            f"next {rotation.next_kid}"
        )
    for retired in sorted(
        (k for k in keys if k.state == "retired"), key=lambda k: (k.alg, k.created_at, k.kid)
    ):
        if now >= expires_at(keys, retired, policy):
            updates.append(replace(retired, state="expired", private_key_sealed=None))
            done.append(f"{retired.alg}: key {retired.kid} expired and left JWKS")
    return ScheduledPass(
        KeyRingChange(tuple(inserts), tuple(updates)),
        tuple(done),
        tuple(waiting),
        tuple(rotations),
    )


def next_wake(
    keys: Sequence[KeyRecord], algs: Iterable[str], policy: LifecyclePolicy, now: float
) -> float | None:
    """The earliest future time a scheduled pass would change something, if any."""
    times = [t.at for t in next_transitions(keys, policy).values()]
    for alg in algs:
        active = keys_in(keys, alg, "active")
        if active and not waiting_keys(keys, alg):
            times.append(now)
    return min(times) if times else None


def iso(timestamp: float) -> str:
    """An RFC 3339 UTC time to the second."""
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def human_duration(seconds: float) -> str:
    """A short duration for people: ``3s``, ``1.5s``, ``15m``, ``2h 5m``, ``30d``."""
    if seconds < 10:
        return f"{max(seconds, 0):.1f}s".replace(".0s", "s")
    whole = round(seconds)
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, whole = divmod(whole, size)
        if count:
            parts.append(f"{count}{unit}")
    return " ".join(parts[:2])
