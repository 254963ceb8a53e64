"""``idp keys list|status|rotate|import`` as subprocesses on both stores: lifecycle in the CLI."""

from __future__ import annotations

import base64
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from idp.config import decode_key_encryption_key, load_settings
from idp.keyring.changes import ensure_key_rings
from idp.keyring.material import unseal
from tests.support.cli import Idp, by_alg
from tests.support.server import with_store

ALGS = ("RS256", "ES256")
HOUR = 3600


def seconds(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


@pytest.fixture
def lifecycle_idp(migrated: Idp) -> Idp:
    """Rotate hourly, JWKS cached 60 s, so keys are pre-published for 120 s."""
    migrated.env.update({"IDP_KEY_ROTATION_INTERVAL": "1h", "IDP_JWKS_MAX_AGE": "60"})
    return migrated


def rings_made_ago(cli: Idp, database_url: str, age: float) -> None:
    """Create the key rings as if it had happened ``age`` seconds ago."""
    settings = load_settings(cli.env)
    then = time.time() - age
    with_store(database_url, lambda store: ensure_key_rings(store, settings, lambda: then))


def test_list_and_status_give_each_keys_next_transition(
    lifecycle_idp: Idp, database_url: str
) -> None:
    rings_made_ago(lifecycle_idp, database_url, 30)
    keys = lifecycle_idp("keys", "list", "--json").json()
    assert len(keys) == 4
    for key in keys:
        activated = seconds(key["activated_at"] or key["created_at"])
        if key["state"] == "active":
            assert key["next_transition"] == "retire"
        else:
            assert key["next_transition"] == "activate"
            activated = seconds(next(k for k in keys if k["alg"] == key["alg"])["created_at"])
        assert seconds(key["next_transition_at"]) == pytest.approx(activated + HOUR, abs=1)
    text = lifecycle_idp("keys", "list").ok().stdout
    assert text.count(" retire at ") == 2 and text.count(" activate at ") == 2

    status = by_alg(lifecycle_idp("keys", "status", "--json").json())
    assert set(status) == set(ALGS)
    for alg, document in status.items():
        assert document["verifiers_safe"] is True
        assert document["manual_rotation_safe_now"] is False  # published 30 s of 120 s
        assert document["next_key_published_for_at_rotation"] == pytest.approx(HOUR, abs=1)
        assert (
            "no verifier that honours the JWKS cache lifetime can be caught out"
            in (document["summary"])
        )
        assert f"{alg}: active key {document['active_kid']}" in document["summary"]
    words = lifecycle_idp("keys", "status").ok().stdout.splitlines()
    assert len(words) == 2
    assert all("A manual rotation now would promote a key published for only" in w for w in words)

    # After a rotation the old key retires and says when it will leave JWKS.
    lifecycle_idp("keys", "rotate", "--alg", "ES256", "--json").json()
    retired = [k for k in lifecycle_idp("keys", "list", "--json").json() if k["state"] == "retired"]
    assert [k["next_transition"] for k in retired] == ["expire"]
    # retired_at + max(600 s access, 3600 s ID token) + 60 s cache
    expected = seconds(retired[0]["retired_at"]) + 3600 + 60
    assert seconds(retired[0]["next_transition_at"]) == pytest.approx(expected, abs=1)
    es = by_alg(lifecycle_idp("keys", "status", "--json").json())["ES256"]
    assert retired[0]["kid"] in es["retired_kids"]
    assert "1 retired key(s) stay published" in es["summary"]


def test_manual_rotation_warns_only_when_the_key_is_too_fresh(
    lifecycle_idp: Idp, database_url: str
) -> None:
    rings_made_ago(lifecycle_idp, database_url, 500)
    calm = lifecycle_idp("keys", "rotate", "--alg", "RS256", "--json")
    assert calm.json()["warning"] is None
    assert calm.stderr == ""
    # The key it promotes now was created a moment ago by the first rotation.
    hasty = lifecycle_idp("keys", "rotate", "--alg", "RS256", "--json")
    document = hasty.json()
    assert "pre-publication window" in document["warning"]
    (line,) = hasty.stderr.splitlines()
    assert line.startswith("idp: warning: RS256: the new active key " + document["active_kid"])
    assert "of the 2m pre-publication window" in line
    text = lifecycle_idp("keys", "rotate")  # both algs; ES256's next is 500 s old
    lines = text.ok().stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("idp: warning: RS256:")
    keys = lifecycle_idp("keys", "list", "--json").json()
    for alg in ALGS:
        assert [k["state"] for k in keys if k["alg"] == alg].count("active") == 1


def _pem(key: Any, fmt: serialization.PrivateFormat, password: bytes | None = None) -> bytes:
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password)
        if password
        else serialization.NoEncryption()
    )
    data: bytes = key.private_bytes(serialization.Encoding.PEM, fmt, encryption)
    return data


def test_import_joins_as_next_sealed_and_audited(
    lifecycle_idp: Idp, database_url: str, cwd: Path
) -> None:
    cli = lifecycle_idp
    rings_made_ago(cli, database_url, 10)
    rsa_key = rsa.generate_private_key(65537, 2048)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    files = {
        "rsa-pkcs8.pem": _pem(rsa_key, serialization.PrivateFormat.PKCS8),
        "ec-traditional.pem": _pem(ec_key, serialization.PrivateFormat.TraditionalOpenSSL),
    }
    for name, data in files.items():
        (cwd / name).write_bytes(data)
    rs_run = cli("keys", "import", "--alg", "RS256", "--pem", "rsa-pkcs8.pem", "--json")
    imported_rs = rs_run.json()
    imported_es = cli("keys", "import", "--alg", "ES256", "--pem", "ec-traditional.pem").ok()
    assert imported_es.stdout.startswith("imported ES256 key ")
    assert imported_rs["state"] == "next" and imported_rs["alg"] == "RS256"
    assert "PRIVATE KEY" not in rs_run.output + imported_es.output

    kek = decode_key_encryption_key("kek", cli.env["IDP_KEY_ENCRYPTION_KEY"])
    records = {r.kid: r for r in with_store(database_url, lambda store: store.list_keys())}
    stored = records[imported_rs["kid"]]
    assert stored.private_key_sealed is not None and b"PRIVATE" not in stored.private_key_sealed
    opened = unseal(stored, kek).as_dict(private=True)
    assert opened["n"] == unseal(stored, kek).as_dict(private=False)["n"]
    public = rsa_key.public_key().public_numbers()
    assert int.from_bytes(_b64(str(opened["n"])), "big") == public.n
    es_kid = imported_es.stdout.split()[3]
    assert records[es_kid].state == "next"

    audit = cli("audit", "list", "--json").json()
    imports = [e for e in audit if e["action"] == "key.import"]
    assert [e["target"] for e in imports] == [imported_rs["kid"], es_kid]
    assert all(e["actor"].startswith("cli") for e in imports)
    assert imports[0]["detail"] == {"alg": "RS256", "state": "next"}

    # It waits behind the older next key, then signs at the following rotation.
    cli("keys", "rotate", "--alg", "ES256", "--json").json()
    second = cli("keys", "rotate", "--alg", "ES256", "--json").json()
    assert second["active_kid"] == es_kid

    cli("keys", "import", "--alg", "RS256", "--pem", "rsa-pkcs8.pem").fails(
        1, imported_rs["kid"], "already in the ring"
    )


def _b64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def test_import_refuses_unusable_pems_with_one_line(migrated: Idp, cwd: Path) -> None:
    small = rsa.generate_private_key(65537, 1024)  # noqa: S505 - refused, that is the point
    p384 = ec.generate_private_key(ec.SECP384R1())
    p256 = ec.generate_private_key(ec.SECP256R1())
    rsa_key = rsa.generate_private_key(65537, 2048)
    pkcs8 = serialization.PrivateFormat.PKCS8
    cases: dict[str, tuple[str, bytes, str]] = {
        "small.pem": ("RS256", _pem(small, pkcs8), "at least 2048 bits, this one has 1024"),
        "ec-for-rsa.pem": ("RS256", _pem(p256, pkcs8), "RS256 needs an RSA key"),
        "rsa-for-ec.pem": ("ES256", _pem(rsa_key, pkcs8), "ES256 needs a P-256 EC key"),
        "p384.pem": ("ES256", _pem(p384, pkcs8), "this one is on secp384r1"),
        "public.pem": (
            "ES256",
            p256.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            ),
            "holds no private key",
        ),
        "encrypted.pem": ("ES256", _pem(p256, pkcs8, b"secret"), "is encrypted"),
        "encrypted-traditional.pem": (
            "RS256",
            _pem(rsa_key, serialization.PrivateFormat.TraditionalOpenSSL, b"secret"),
            "is encrypted",
        ),
        "garbage.pem": ("ES256", b"hello\n", "not a PEM file"),
        "broken.pem": (
            "ES256",
            b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
            "cannot be read",
        ),
    }
    for name, (alg, data, fragment) in cases.items():
        (cwd / name).write_bytes(data)
        migrated("keys", "import", "--alg", alg, "--pem", name).fails(1, name, fragment)
    migrated("keys", "import", "--alg", "ES256", "--pem", "missing.pem").fails(
        1, "missing.pem", "No such file"
    )
    assert migrated("keys", "list", "--json").json() == []
    assert migrated("audit", "list", "--json").json() == []
