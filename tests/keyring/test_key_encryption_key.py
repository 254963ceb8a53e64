"""The key-encryption key and its store: one key per store, checked before every write.

CLI tests run ``python -m idp`` for real (tests/support/cli.py); every test that touches storage
runs on both stores, except those about the SQLite key file, which only SQLite has.
"""

from __future__ import annotations

import asyncio
import getpass
import os
import shutil
import stat
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from idp.admin.clients import create_client
from idp.admin.context import AdminContext
from idp.admin.keys import rewrap_keys
from idp.config import Settings, load_settings, new_key_encryption_key
from idp.http.app import create_app
from idp.keyring.changes import ensure_key_rings
from idp.keyring.kek import KeyEncryptionKeyMismatch
from idp.keyring.material import new_key_record, opens, unseal
from idp.oauth.registration import ClientRequest
from idp.store.base import KeyRecord, KeyRingChange, Store
from tests.support.cli import Idp, clean_environ
from tests.support.keys import key_of
from tests.support.processes import wait_for
from tests.support.server import LiveServer, basic, start_server, with_store

READ_ONLY_COMMANDS = (
    ("clients", "list"),
    ("clients", "show", "some-client"),
    ("users", "list"),
    ("users", "show", "some-user"),
    ("keys", "list"),
    ("keys", "status"),
    ("audit", "list"),
)
RELOAD_DEADLINE = 30.0
REPOSITORY = Path(__file__).resolve().parents[2]


def sealed(database_url: str) -> list[KeyRecord]:
    keys = with_store(database_url, lambda store: store.list_keys())
    return [k for k in keys if k.private_key_sealed]


def all_open_under(keys: Sequence[KeyRecord], key: bytes) -> bool:
    return bool(keys) and all(opens(k, key) for k in keys)


def snapshot(database_url: str) -> tuple[object, ...]:
    """Everything a refused command must leave as it was."""

    async def read(store: Store) -> tuple[object, ...]:
        return (
            await store.list_keys(),
            await store.key_ring_version(),
            await store.list_clients(),
            await store.list_users(),
            await store.list_audit(),
        )

    return with_store(database_url, read)


def write_key_file(path: Path, text: str) -> Path:
    path.write_text(text + "\n")
    path.chmod(0o600)
    return path


# -- every writer checks the key against the ring -------------------------------------------


def test_a_wrong_key_is_refused_before_anything_is_written(
    migrated: Idp, database_url: str, cwd: Path
) -> None:
    """Keys sealed under one key: a command given another refuses with one line and writes
    nothing; read-only commands still read."""
    kid = migrated("keys", "rotate", "--json").json()[0]["active_kid"]
    before = snapshot(database_url)
    wrong = new_key_encryption_key()
    for args in (
        ("clients", "create", "--name", "forked"),
        ("keys", "rotate"),
        ("keys", "revoke", kid),
        ("users", "unlock", "nobody"),
        ("migrate",),
        ("keys", "rewrap", "--new-key-file", str(write_key_file(cwd / "n", wrong))),
    ):
        line = migrated(*args, IDP_KEY_ENCRYPTION_KEY=wrong).fails(1, "does not open")
        assert "IDP_KEY_ENCRYPTION_KEY" in line and "nothing was written" in line
    migrated(
        "users", "create", "--username", "ada", "--password-stdin",
        stdin="a long enough password\n", IDP_KEY_ENCRYPTION_KEY=wrong,
    ).fails(1, "does not open")  # fmt: skip
    assert snapshot(database_url) == before
    assert len(migrated("keys", "list", "--json", IDP_KEY_ENCRYPTION_KEY=wrong).json()) == 4


def test_serve_refuses_a_key_that_does_not_open_the_ring(migrated: Idp, database_url: str) -> None:
    """``idp serve`` says so in one line and exits, instead of failing at a later promotion."""
    migrated("keys", "rotate").ok()
    before = snapshot(database_url)
    wrong = new_key_encryption_key()
    migrated("serve", "--port", "1", IDP_KEY_ENCRYPTION_KEY=wrong).fails(1, "does not open")
    assert snapshot(database_url) == before


# -- /readyz ----------------------------------------------------------------------------------


def test_readyz_is_not_ready_while_the_stores_keys_cannot_be_opened(
    live_server: LiveServer, http: httpx.Client, database_url: str
) -> None:
    """A key sealed under another key joins the ring (as a forked writer would have added
    it): /readyz answers 503 naming the reason, and JWKS keeps serving the held ring."""
    assert http.get("/readyz").status_code == 200
    foreign = add_foreign_next_key(database_url)

    def not_ready() -> dict[str, str] | None:
        answer = http.get("/readyz")
        return answer.json() if answer.status_code == 503 else None

    document = wait_for(not_ready, RELOAD_DEADLINE, 0.1, "/readyz not ready")
    assert document is not None
    assert document["keys"] == "unreadable"
    assert foreign.kid in document["reason"]
    assert "key-encryption key does not match" in document["reason"]
    assert http.get("/jwks.json").status_code == 200

    # Nor does the server change the ring it cannot open: the admin API says so, writes nothing.
    before = snapshot(database_url)[:2]
    token = admin_token(live_server, http)
    rotated = http.post("/admin/keys/rotate", headers={"Authorization": f"Bearer {token}"})
    assert rotated.status_code == 503, rotated.text
    assert rotated.json()["error"] == "temporarily_unavailable"
    assert "does not open" in rotated.json()["error_description"]
    assert snapshot(database_url)[:2] == before


def test_readyz_after_a_rewrap_names_the_active_key_until_restart(
    live_server: LiveServer, http: httpx.Client, database_url: str, port: int
) -> None:
    """After ``keys rewrap`` a server still holding the old key goes not ready (naming the
    active key it cannot open) but keeps signing; started with the new key, it is ready."""
    new_text = new_key_encryption_key()
    old = live_server.settings
    with_store(database_url, lambda store: rewrap_keys(AdminContext(store, old), key_of(new_text)))

    def not_ready() -> dict[str, str] | None:
        answer = http.get("/readyz")
        return answer.json() if answer.status_code == 503 else None

    document = wait_for(not_ready, RELOAD_DEADLINE, 0.1, "/readyz not ready")
    assert document is not None and document["keys"] == "unreadable"
    assert document["reason"].startswith("active key ")
    assert http.get("/jwks.json").status_code == 200
    live_server.stop()
    restarted = start_server(replace(old, key_encryption_key=key_of(new_text)), port)
    try:
        assert httpx.get(f"{restarted.url}/readyz", timeout=30).status_code == 200
    finally:
        restarted.stop()


def test_the_app_refuses_to_start_with_a_key_that_does_not_open_the_ring(
    settings: Settings, port: int
) -> None:
    """Every server process checks the key at start-up (the ASGI app, not only ``idp serve``):
    a waiting key it cannot open stops it now, not at that key's promotion hours later."""
    start_server(settings, port).stop()
    foreign = add_foreign_next_key(settings.database_url)
    app = create_app(settings)

    async def start() -> None:
        async with app.router.lifespan_context(app):
            pass

    with pytest.raises(KeyEncryptionKeyMismatch, match=f"does not open 1 of the 4 .*{foreign.kid}"):
        asyncio.run(start())


def admin_token(live_server: LiveServer, http: httpx.Client) -> str:
    """An access token for the admin API, from a client registered in the store."""

    async def register(store: Store) -> tuple[str, str]:
        ctx = AdminContext(store, live_server.settings)
        record, secret = await create_client(ctx, ClientRequest(name="ops"), admin=True)
        return record.client_id, secret or ""

    client_id, secret = with_store(live_server.settings.database_url, register)
    answer = http.post(
        "/token", data={"grant_type": "client_credentials"}, headers=basic(client_id, secret)
    )
    assert answer.status_code == 200, answer.text
    token: str = answer.json()["access_token"]
    return token


def add_foreign_next_key(database_url: str) -> KeyRecord:
    """Replace the ES256 ``next`` key by one sealed under another key-encryption key, as a
    command run with another key (or from another directory) used to."""
    foreign = new_key_record("ES256", 2048, key_of(new_key_encryption_key()), "next", 1.0)

    def add(keys: Sequence[KeyRecord]) -> KeyRingChange:
        waiting = next(k for k in keys if k.alg == "ES256" and k.state == "next")
        return KeyRingChange(inserts=(foreign,), updates=(_revoked(waiting),))

    with_store(database_url, lambda store: store.change_key_ring(add))
    return foreign


def _revoked(key: KeyRecord) -> KeyRecord:
    return replace(key, state="revoked", private_key_sealed=None, revoked_at=2.0)


# -- keys rewrap ------------------------------------------------------------------------------


def test_rewrap_reseals_every_key_under_the_new_key_audited(
    migrated: Idp, database_url: str, cwd: Path
) -> None:
    """Every sealed key opens under the new key only; one key.rewrap row per key; the old
    key is refused from then on and the new one works. The key never appears in output."""
    migrated("keys", "rotate").ok()
    migrated("keys", "rotate").ok()
    old_key = key_of(migrated.env["IDP_KEY_ENCRYPTION_KEY"])
    before = sealed(database_url)
    assert len(before) == 6
    new_text = new_key_encryption_key()
    new_file = write_key_file(cwd / "new.kek", new_text)

    result = migrated("keys", "rewrap", "--new-key-file", str(new_file), "--json")
    document = result.json()
    assert sorted(document["rewrapped_kids"]) == sorted(k.kid for k in before)
    assert document["key_file"] is None
    assert new_text not in result.output

    after = sealed(database_url)
    assert all_open_under(after, key_of(new_text))
    assert not any(opens(k, old_key) for k in after)
    assert [(k.kid, k.state) for k in after] == [(k.kid, k.state) for k in before]
    for old, new in zip(before, after, strict=True):
        assert unseal(old, old_key).as_dict(private=True) == unseal(new, key_of(new_text)).as_dict(
            private=True
        )
    audit = migrated("audit", "list", "--json").json()
    rewraps = [e for e in audit if e["action"] == "key.rewrap"]
    assert sorted(e["target"] for e in rewraps) == sorted(k.kid for k in before)
    assert {e["actor"] for e in rewraps} == {f"cli:{_login()}"}

    migrated("keys", "rotate").fails(1, "does not open")
    migrated("keys", "rotate", IDP_KEY_ENCRYPTION_KEY=new_text).ok()


def test_rewrap_refuses_unusable_new_keys_with_one_line(
    migrated: Idp, database_url: str, cwd: Path
) -> None:
    migrated("keys", "rotate").ok()
    before = snapshot(database_url)
    same = write_key_file(cwd / "same.kek", migrated.env["IDP_KEY_ENCRYPTION_KEY"])
    migrated("keys", "rewrap", "--new-key-file", str(same)).fails(1, "already in use")
    short = write_key_file(cwd / "short.kek", "c2hvcnQ")
    migrated("keys", "rewrap", "--new-key-file", str(short)).fails(1, "--new-key-file")
    migrated("keys", "rewrap", "--new-key-file", str(cwd / "absent")).fails(1, "--new-key-file")
    assert snapshot(database_url) == before


def _login() -> str:
    return getpass.getuser()


# -- read-only commands ---------------------------------------------------------------------


def test_read_only_commands_create_nothing_and_name_the_database(
    idp: Idp, database_url: str, tmp_path: Path, cwd: Path
) -> None:
    """On a store with no schema each read-only command fails with one line naming the
    database it looked at, and no file appears (no database, no key file)."""
    files_before = sorted(tmp_path.rglob("*"))
    for attempt in idp.concurrently(*READ_ONLY_COMMANDS):
        line = attempt.fails(1, "schema is missing", "idp migrate")
        if database_url.startswith("sqlite:"):
            assert str(tmp_path / "idp.db") in line
        else:
            assert "PostgreSQL postgresql://postgres@127.0.0.1" in line
    assert sorted(tmp_path.rglob("*")) == files_before


def test_read_only_commands_without_key_file_create_nothing(cwd: Path) -> None:
    """The default SQLite store with no key file yet: listing never creates one (SQLite)."""
    Idp({}, cwd).concurrently(*READ_ONLY_COMMANDS)
    assert list(cwd.iterdir()) == []
    idp = Idp({}, cwd)
    idp("migrate").ok()
    (cwd / "var" / "idp.db.kek").unlink()
    for args in READ_ONLY_COMMANDS[::2]:
        idp(*args).ok()
    assert not (cwd / "var" / "idp.db.kek").exists()


# -- the SQLite key file --------------------------------------------------------------------


def test_sqlite_key_file_lives_beside_the_database_whatever_the_directory(tmp_path: Path) -> None:
    """Commands run from two directories on one database share one key, kept beside the
    database; the database and the key file are created with mode 0600 (SQLite only)."""
    data = tmp_path / "data"
    env = {"IDP_DATABASE_URL": f"sqlite:///{data}/idp.db"}
    first, second = tmp_path / "one", tmp_path / "two"
    first.mkdir()
    second.mkdir()
    Idp(env, first)("migrate").ok()
    Idp(env, second)("keys", "rotate").ok()
    Idp(env, first)("keys", "rotate").ok()
    assert list(first.iterdir()) == [] and list(second.iterdir()) == []
    key_file = data / "idp.db.kek"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE((data / "idp.db").stat().st_mode) == 0o600
    keys = sealed(env["IDP_DATABASE_URL"])
    assert len(keys) == 6
    assert all_open_under(keys, key_of(key_file.read_text()))


def test_no_new_key_is_generated_for_a_store_that_has_keys(cwd: Path) -> None:
    """The key file gone, a store holding sealed keys gets no new one: writers refuse with
    one line naming the file, nothing is created (SQLite only)."""
    idp = Idp({}, cwd)
    idp("keys", "rotate").fails(1, "schema is missing")
    assert not (cwd / "var" / "idp.db.kek").exists()
    idp("migrate").ok()
    idp("keys", "rotate").ok()
    key_file = cwd / "var" / "idp.db.kek"
    key_file.unlink()
    before = snapshot(f"sqlite:///{cwd}/var/idp.db")
    for args in (("keys", "rotate"), ("clients", "create", "--name", "x"), ("migrate",)):
        idp(*args).fails(2, str(key_file), "holds 4 sealed signing keys", "no new key")
    assert not key_file.exists()
    assert snapshot(f"sqlite:///{cwd}/var/idp.db") == before


def test_upgrade_from_the_old_key_file_place_says_how_to_move_it(cwd: Path) -> None:
    """A store set up by an earlier version kept its key in keys/key-encryption-key of the
    working directory: writers say in one line to move it, and after the move all works
    (SQLite only)."""
    old_text = new_key_encryption_key()
    (cwd / "keys").mkdir()
    legacy = write_key_file(cwd / "keys" / "key-encryption-key", old_text)
    database_url = f"sqlite:///{cwd}/var/idp.db"
    settings = load_settings({"IDP_DATABASE_URL": database_url, "IDP_KEY_ENCRYPTION_KEY": old_text})

    async def set_up(store: Store) -> None:
        await store.migrate()
        await ensure_key_rings(store, settings)

    with_store(database_url, set_up)
    idp = Idp({}, cwd)
    assert len(idp("keys", "list", "--json").json()) == 4
    new_place = cwd / "var" / "idp.db.kek"
    line = idp("clients", "create", "--name", "x").fails(2, f"mv {legacy} {new_place}")
    assert "earlier versions" in line
    assert not new_place.exists()
    os.rename(legacy, new_place)
    idp("clients", "create", "--name", "x").ok()
    idp("keys", "rotate").ok()
    assert all_open_under(sealed(database_url), key_of(old_text))


def test_rewrap_replaces_the_default_key_file(cwd: Path) -> None:
    """With the store's own key file, rewrap writes the new key into it (0600) and later
    commands use it without further steps (SQLite only)."""
    idp = Idp({}, cwd)
    idp("migrate").ok()
    idp("keys", "rotate").ok()
    key_file = cwd / "var" / "idp.db.kek"
    new_text = new_key_encryption_key()
    new_file = write_key_file(cwd / "new.kek", new_text)
    document = idp("keys", "rewrap", "--new-key-file", str(new_file), "--json").json()
    assert document["key_file"] == str(key_file)
    assert key_file.read_text().strip() == new_text
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert all_open_under(sealed(f"sqlite:///{cwd}/var/idp.db"), key_of(new_text))
    idp("keys", "rotate").ok()
    text = idp(
        "keys",
        "rewrap",
        "--new-key-file",
        str(write_key_file(cwd / "n2", new_key_encryption_key())),
    ).ok()
    assert "re-sealed 6 signing key(s)" in text.stdout and str(key_file) in text.stdout


def test_scripts_serve_moves_the_old_key_file_beside_the_database(tmp_path: Path) -> None:
    """The quick start upgrades itself: keys/key-encryption-key of a checkout moves to
    var/idp.db.kek, where `idp` then finds the key that opens the store (SQLite only)."""
    root = tmp_path / "checkout"
    (root / "scripts").mkdir(parents=True)
    shutil.copy(REPOSITORY / "scripts" / "serve", root / "scripts" / "serve")
    bin_dir = root / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    for name, command in (("python", ""), ("idp", " -m idp")):
        (bin_dir / name).write_text(f'#!/bin/sh\nexec {sys.executable}{command} "$@"\n')
        (bin_dir / name).chmod(0o755)
    (root / "pyproject.toml").write_text("")
    os.utime(root / "pyproject.toml", (1_000_000, 1_000_000))
    (root / ".venv" / ".idp-installed").write_text("")
    old_text = new_key_encryption_key()
    (root / "keys").mkdir()
    write_key_file(root / "keys" / "key-encryption-key", old_text)
    database_url = f"sqlite:///{root}/var/idp.db"
    settings = load_settings({"IDP_DATABASE_URL": database_url, "IDP_KEY_ENCRYPTION_KEY": old_text})

    async def set_up(store: Store) -> None:
        await store.migrate()
        await ensure_key_rings(store, settings)

    with_store(database_url, set_up)
    # --tls-cert alone stops `idp serve` after the key has been read, before it listens.
    finished = subprocess.run(
        [str(root / "scripts" / "serve"), "--tls-cert", "x"],
        cwd=tmp_path,
        env=clean_environ(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert "moved keys/key-encryption-key to var/idp.db.kek" in finished.stderr
    assert "--tls-cert and --tls-key go together" in finished.stderr, finished.stderr
    assert not (root / "keys" / "key-encryption-key").exists()
    key_file = root / "var" / "idp.db.kek"
    assert key_file.read_text().strip() == old_text
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert all_open_under(sealed(database_url), key_of(key_file.read_text()))
