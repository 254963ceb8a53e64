"""Key material and lifecycle rules: sealing, kids, JWKS contents, transitions."""

from __future__ import annotations

import json
import os
import time
from dataclasses import replace

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from idp.keyring import lifecycle
from idp.keyring.material import KeyMaterialError, new_key_record, unseal
from idp.keyring.ring import KeyRing, NoSigningKey
from idp.store.base import KeyRecord

KEK = os.urandom(32)
PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi"}


def make(alg: str, state: str, now: float = 100.0) -> KeyRecord:
    return new_key_record(alg, 2048, KEK, state, now)


@pytest.mark.parametrize("alg", ["RS256", "ES256"])
def test_sealed_key_opens_only_with_the_right_kek(alg: str) -> None:
    record = make(alg, "active")
    assert record.private_key_sealed is not None
    assert b"PRIVATE KEY" not in record.private_key_sealed
    key = unseal(record, KEK)
    assert key.thumbprint() == record.kid
    with pytest.raises(KeyMaterialError):
        unseal(record, os.urandom(32))


def test_sealed_blob_is_bound_to_its_kid() -> None:
    first, second = make("ES256", "active"), make("ES256", "next")
    moved = replace(second, private_key_sealed=first.private_key_sealed)
    with pytest.raises(KeyMaterialError):
        unseal(moved, KEK)


def test_public_jwk_has_no_private_members() -> None:
    for alg in ("RS256", "ES256"):
        document = json.loads(make(alg, "next").public_jwk)
        assert not PRIVATE_MEMBERS & set(document)
        assert document["use"] == "sig" and document["alg"] == alg


def test_ring_publishes_next_active_retired_not_revoked() -> None:
    keys = [
        make("ES256", "active"),
        make("ES256", "next"),
        make("ES256", "retired"),
        replace(make("ES256", "revoked"), private_key_sealed=None),
    ]
    ring = KeyRing.build(keys, 7, KEK)
    published = [k["kid"] for k in json.loads(ring.jwks)["keys"]]
    assert published == [keys[0].kid, keys[1].kid, keys[2].kid]
    assert ring.version == 7
    assert ring.jwks_etag.startswith('"') and ring.jwks_etag.endswith('"')
    assert not any(PRIVATE_MEMBERS & set(k) for k in json.loads(ring.jwks)["keys"])


def test_ring_signs_with_active_key_and_verifies_by_jwks() -> None:
    active = make("RS256", "active")
    ring = KeyRing.build([active, make("RS256", "next")], 1, KEK)
    token = ring.sign("RS256", {"sub": "x"}, "at+jwt", time.time())
    decoded = jwt.decode(token, KeySet.import_key_set(json.loads(ring.jwks)))
    assert decoded.header["kid"] == active.kid
    assert decoded.header["typ"] == "at+jwt"
    with pytest.raises(NoSigningKey):
        ring.sign("ES256", {"sub": "x"}, "at+jwt", time.time())


def _factory() -> lifecycle.NewKey:
    return lambda alg, state: make(alg, state, 200.0)


def test_rotate_without_next_creates_active_and_next() -> None:
    active = make("ES256", "active")
    change, rotation = lifecycle.rotate([active], "ES256", _factory(), 300.0)
    assert rotation.retired_kid == active.kid
    assert [k.state for k in change.inserts] == ["active", "next"]
    assert change.updates[0].state == "retired" and change.updates[0].retired_at == 300.0


def test_rotate_keeps_extra_next_keys() -> None:
    keys = [make("ES256", "active"), make("ES256", "next", 1.0), make("ES256", "next", 2.0)]
    change, rotation = lifecycle.rotate(keys, "ES256", _factory(), 300.0)
    assert rotation.active_kid == keys[1].kid
    assert rotation.next_kid == keys[2].kid
    assert change.inserts == ()


def test_revoke_unknown_or_twice_is_refused() -> None:
    keys = [make("ES256", "active"), replace(make("ES256", "revoked"), private_key_sealed=None)]
    with pytest.raises(lifecycle.NotFound):
        lifecycle.revoke(keys, "nope", _factory(), 1.0)
    with pytest.raises(lifecycle.KeyRingError):
        lifecycle.revoke(keys, keys[1].kid, _factory(), 1.0)


def test_revoke_active_without_next_makes_fresh_active_and_next() -> None:
    active = make("RS256", "active")
    change, revoked = lifecycle.revoke([active], active.kid, _factory(), 5.0)
    assert revoked.private_key_sealed is None and revoked.revoked_at == 5.0
    assert sorted(k.state for k in change.inserts) == ["active", "next"]


def test_revoke_next_replaces_it() -> None:
    keys = [make("RS256", "active"), make("RS256", "next")]
    change, _ = lifecycle.revoke(keys, keys[1].kid, _factory(), 5.0)
    assert [k.state for k in change.inserts] == ["next"]
    assert [k.state for k in change.updates] == ["revoked"]
