"""Scheduled key transitions as pure functions, driven by a clock the test moves."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import replace

import pytest

from idp.config import Settings, load_settings, new_key_encryption_key
from idp.keyring import lifecycle
from idp.keyring import status as ring_words
from idp.keyring.lifecycle import LifecyclePolicy, scheduled_pass
from idp.keyring.material import new_key_record
from idp.keyring.ring import InvalidSignature, KeyRing
from idp.store.base import KeyRecord, KeyRingChange

KEK = os.urandom(32)
DAY = 86400.0
# 30-day rotation, 10-minute pre-publication, retired keys kept 1 h (token) + 5 min (cache).
POLICY = LifecyclePolicy(rotation_interval=30 * DAY, prepublish=600.0, retention=3900.0)
T0 = 1_800_000_000.0


class Ring:
    """Key rows plus a clock: applies each change the way a store would."""

    def __init__(self, algs: Sequence[str] = ("ES256",)) -> None:
        self.now = T0
        self.algs = tuple(algs)
        self.keys: list[KeyRecord] = []
        self.apply(lifecycle.ensure_rings(self.keys, self.algs, self.new_key))

    def new_key(self, alg: str, state: str) -> KeyRecord:
        return new_key_record(alg, 2048, KEK, state, self.now)

    def apply(self, change: KeyRingChange) -> None:
        updated = {k.kid: k for k in change.updates}
        self.keys = [updated.get(k.kid, k) for k in self.keys] + list(change.inserts)

    def tick(self, seconds: float) -> lifecycle.ScheduledPass:
        self.now += seconds
        found = scheduled_pass(self.keys, self.algs, POLICY, self.new_key, self.now)
        self.apply(found.change)
        return found

    def state(self, alg: str = "ES256") -> dict[str, list[str]]:
        states: dict[str, list[str]] = {}
        for key in self.keys:
            if key.alg == alg:
                states.setdefault(key.state, []).append(key.kid)
        return states

    def one(self, state: str, alg: str = "ES256") -> KeyRecord:
        found = [k for k in self.keys if k.alg == alg and k.state == state]
        assert len(found) == 1, (state, found)
        return found[0]


def test_nothing_happens_before_the_interval() -> None:
    ring = Ring()
    found = ring.tick(30 * DAY - 1)
    assert found.change.is_empty and not found.waiting and not found.done


def test_whole_timeline_next_active_retired_expired() -> None:
    ring = Ring()
    first, second = ring.one("active"), ring.one("next")
    found = ring.tick(30 * DAY)
    assert [r.active_kid for r in found.rotations] == [second.kid]
    assert ring.one("active").kid == second.kid
    retired = ring.one("retired")
    assert retired.kid == first.kid and retired.retired_at == ring.now
    third = ring.one("next")
    assert third.created_at == ring.now  # a new next key is published at once
    # The retired key stays published for the longest token lifetime + the cache lifetime.
    assert ring.tick(POLICY.retention - 1).change.is_empty
    found = ring.tick(1)
    expired = next(k for k in ring.keys if k.kid == first.kid)
    assert expired.state == "expired" and expired.private_key_sealed is None
    assert found.done == (f"ES256: key {first.kid} expired and left JWKS",)
    assert first.kid not in KeyRing.build(ring.keys, 1, KEK).verification
    # Next rotation: 30 days after the second key was activated.
    ring.tick(30 * DAY - POLICY.retention - 1)
    assert ring.one("active").kid == second.kid
    ring.tick(1)
    assert ring.one("active").kid == third.kid


def test_rotation_waits_for_prepublication_and_says_why() -> None:
    ring = Ring()
    ring.now += 30 * DAY
    # An operator revokes the next key just before the rotation: its replacement is new.
    change, _ = lifecycle.revoke(ring.keys, ring.one("next").kid, ring.new_key, ring.now)
    ring.apply(change)
    fresh = ring.one("next")
    found = ring.tick(1)
    assert found.change.is_empty
    ((subject, reason),) = found.waiting
    assert subject == f"ES256:{fresh.kid}"
    assert "published for only 1s of 10m" in reason
    times = lifecycle.next_transitions(ring.keys, POLICY)
    assert times[fresh.kid] == lifecycle.Transition(
        fresh.kid, "ES256", "activate", fresh.created_at + 600
    )
    assert ring.tick(598).change.is_empty
    found = ring.tick(1)
    assert found.rotations[0].active_kid == fresh.kid


def test_each_alg_rotates_on_its_own_schedule() -> None:
    ring = Ring(("RS256", "ES256"))
    ring.now += DAY
    change, _ = lifecycle.rotate(ring.keys, "RS256", ring.new_key, ring.now)
    ring.apply(change)
    es_next = ring.one("next", "ES256")
    rs_active = ring.one("active", "RS256")
    found = ring.tick(29 * DAY)
    assert [r.alg for r in found.rotations] == ["ES256"]
    assert ring.one("active", "ES256").kid == es_next.kid
    assert ring.one("active", "RS256").kid == rs_active.kid
    found = ring.tick(DAY)
    assert [r.alg for r in found.rotations] == ["RS256"]


def test_ring_without_next_gets_one_and_oldest_next_is_promoted() -> None:
    ring = Ring()
    ring.keys = [k for k in ring.keys if k.state != "next"]
    found = ring.tick(1)
    assert len(found.change.inserts) == 1 and found.change.inserts[0].state == "next"
    older = ring.one("next")
    ring.now += 5
    ring.apply(KeyRingChange(inserts=(ring.new_key("ES256", "next"),)))
    ring.tick(30 * DAY)
    assert ring.one("active").kid == older.kid


def test_next_transitions_name_every_live_key() -> None:
    ring = Ring()
    ring.tick(30 * DAY)
    times = lifecycle.next_transitions(ring.keys, POLICY)
    active, nxt, retired = ring.one("active"), ring.one("next"), ring.one("retired")
    assert times[active.kid].name == "retire" and times[active.kid].at == ring.now + 30 * DAY
    assert times[nxt.kid].name == "activate" and times[nxt.kid].at == ring.now + 30 * DAY
    assert times[retired.kid] == lifecycle.Transition(
        retired.kid, "ES256", "expire", ring.now + POLICY.retention
    )
    wake = lifecycle.next_wake(ring.keys, ["ES256"], POLICY, ring.now)
    assert wake == ring.now + POLICY.retention
    ring.tick(POLICY.retention)
    assert retired.kid not in lifecycle.next_transitions(ring.keys, POLICY)


def test_manual_rotation_warns_when_the_promoted_key_is_too_fresh() -> None:
    ring = Ring()
    ring.now += 60
    change, rotation = lifecycle.rotate(ring.keys, "ES256", ring.new_key, ring.now, 600)
    ring.apply(change)
    assert rotation.warning is not None
    assert "published for only 1m of the 10m pre-publication window" in rotation.warning
    ring.now += 600
    _, rotation = lifecycle.rotate(ring.keys, "ES256", ring.new_key, ring.now, 600)
    assert rotation.warning is None
    _, rotation = lifecycle.rotate(
        [ring.one("active")], "ES256", ring.new_key, ring.now, prepublish=600
    )
    assert rotation.warning is not None and "only 0s" in rotation.warning


def test_status_in_plain_words() -> None:
    ring = Ring()
    ring.now += 60
    status = ring_words.ring_status(ring.keys, "ES256", POLICY, ring.now)
    assert status.verifiers_safe and not status.manual_rotation_safe_now
    assert status.rotation_at == T0 + 30 * DAY
    assert "Next scheduled rotation at 2027-02-14T08:00:00Z (in 29d 23h)" in status.summary
    assert "no verifier that honours the JWKS cache lifetime can be caught out" in status.summary
    assert "A manual rotation now would promote a key published for only 1m" in status.summary
    ring.now += 600
    assert ring_words.ring_status(ring.keys, "ES256", POLICY, ring.now).manual_rotation_safe_now
    missing = ring_words.ring_status(ring.keys, "RS256", POLICY, ring.now)
    assert missing.active_kid is None and not missing.verifiers_safe


def default_settings() -> Settings:
    return load_settings({"IDP_KEY_ENCRYPTION_KEY": new_key_encryption_key()})


def test_policy_from_settings_keeps_retired_keys_for_the_longest_token() -> None:
    settings = default_settings()
    tuned = replace(settings, access_token_ttl=600, id_token_ttl=3600, jwks_max_age=300)
    policy = LifecyclePolicy.from_settings(tuned)
    assert policy.retention == 3900
    assert policy.prepublish == settings.key_prepublish


@pytest.mark.parametrize("alg", ["RS256", "ES256"])
def test_ring_refuses_tokens_of_a_revoked_key(alg: str) -> None:
    ring = Ring((alg,))
    signed = KeyRing.build(ring.keys, 1, KEK).sign(alg, {"sub": "x"}, "at+jwt", ring.now)
    assert KeyRing.build(ring.keys, 1, KEK).verify(signed)[1]["sub"] == "x"
    change, _ = lifecycle.revoke(ring.keys, ring.one("active", alg).kid, ring.new_key, ring.now)
    ring.apply(change)
    after = KeyRing.build(ring.keys, 2, KEK)
    with pytest.raises(InvalidSignature, match="not published"):
        after.verify(signed)
    with pytest.raises(InvalidSignature):
        after.verify(signed[:-4] + "AAAA")


def test_hasty_manual_rotation_keeps_the_replaced_key_signing_until_prepublished() -> None:
    ring = Ring()
    ring.now += 5000  # the first next key is well pre-published
    change, _ = lifecycle.rotate(ring.keys, "ES256", ring.new_key, ring.now, 600)
    ring.apply(change)
    planned = ring.one("active")
    assert KeyRing.build(ring.keys, 1, KEK, 600).sign("ES256", {}, "at+jwt", ring.now)
    ring.now += 1
    change, rotation = lifecycle.rotate(ring.keys, "ES256", ring.new_key, ring.now, 600)
    ring.apply(change)
    assert rotation.warning is not None
    hasty = ring.one("active")
    built = KeyRing.build(ring.keys, 2, KEK, 600)

    def kid_at(now: float) -> str:
        token = built.sign("ES256", {"sub": "x"}, "at+jwt", now)
        return str(built.verify(token)[0]["kid"])

    assert kid_at(ring.now) == planned.kid  # published 1 s only: the replaced key signs
    words = ring_words.ring_status(ring.keys, "ES256", POLICY, ring.now).summary
    assert f"retired key {planned.kid} keeps signing until" in words
    assert kid_at(hasty.created_at + 599) == planned.kid
    assert kid_at(hasty.created_at + 600) == hasty.kid
    # The replaced key stays published for tokens it signed in the meantime.
    retired = next(k for k in ring.keys if k.kid == planned.kid)
    assert lifecycle.expires_at(ring.keys, retired, POLICY) == hasty.created_at + 600 + 3900
    ring.now = hasty.created_at + 600 + 3899
    assert not [k for k in ring.tick(0).change.updates if k.kid == planned.kid]
    ring.tick(1)
    assert next(k for k in ring.keys if k.kid == planned.kid).state == "expired"


def test_revoked_key_is_never_an_interim_signer() -> None:
    ring = Ring()
    ring.now += 5000
    for _ in range(2):  # the second rotation is hasty: the replaced key would sign a while
        change, _ = lifecycle.rotate(ring.keys, "ES256", ring.new_key, ring.now, 600)
        ring.apply(change)
        ring.now += 1
    interim = KeyRing.build(ring.keys, 2, KEK, 600).interim["ES256"]
    change, _ = lifecycle.revoke(ring.keys, interim[0], ring.new_key, ring.now)
    ring.apply(change)
    built = KeyRing.build(ring.keys, 3, KEK, 600)
    assert built.interim == {}
    token = built.sign("ES256", {}, "at+jwt", ring.now)
    assert built.verify(token)[0]["kid"] == ring.one("active").kid


def test_settings_that_weaken_the_promise_are_named() -> None:
    settings = default_settings()
    assert lifecycle.settings_warnings(settings) == []
    short = replace(settings, key_prepublish=60, jwks_max_age=300)
    (warning,) = lifecycle.settings_warnings(short)
    assert warning.startswith("IDP_KEY_PREPUBLISH (1m) is shorter than IDP_JWKS_MAX_AGE (5m)")
    slow = replace(settings, key_prepublish=7200, key_rotation_interval=3600)
    (warning,) = lifecycle.settings_warnings(slow)
    assert "is longer than IDP_KEY_ROTATION_INTERVAL (1h)" in warning


def test_rapid_rotations_sign_with_the_last_pre_published_key() -> None:
    """Three rotations in three seconds: the last well pre-published key signs until its
    successor has been published long enough, whatever older interims there were."""
    ring = Ring()
    ring.now += 5000
    change, _ = lifecycle.rotate(ring.keys, "ES256", ring.new_key, ring.now, 600)
    ring.apply(change)  # planned: promotes a key published 5000 s
    planned = ring.one("active")
    for _ in range(2):
        ring.now += 1
        change, rotation = lifecycle.rotate(ring.keys, "ES256", ring.new_key, ring.now, 600)
        ring.apply(change)
        assert rotation.warning is not None
    built = KeyRing.build(ring.keys, 9, KEK, 600)
    successor = next(k for k in ring.keys if k.activated_at == ring.now - 1)
    assert built.interim["ES256"][0] == planned.kid
    assert built.interim["ES256"][2] == successor.created_at + 600
    token = built.sign("ES256", {}, "at+jwt", ring.now)
    assert built.verify(token)[0]["kid"] == planned.kid
