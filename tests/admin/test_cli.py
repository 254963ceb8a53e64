"""The ``idp`` admin command, run for real as ``python -m idp`` in a subprocess.

Every test that touches storage runs on both stores (the ``database_url`` fixture). The
contract checked throughout: success exits 0 and ``--json`` puts exactly one JSON document on
stdout; a failure exits 1 (2 for usage and configuration errors) with exactly one line on
stderr, nothing on stdout and never a traceback.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import stat
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from argon2.exceptions import VerifyMismatchError

from idp.config import decode_key_encryption_key
from idp.keyring.material import unseal
from idp.store.base import Store
from tests.support.cli import Idp, Result, by_alg
from tests.support.server import free_port, make_env, pg_base_url, with_store

ALGS = ("RS256", "ES256")
PRIVATE_JWK_MEMBERS = ("d", "p", "q", "dp", "dq", "qi")
PRIVATE_MEMBER_AS_KEY = re.compile(r"""["'](?:d|p|q|dp|dq|qi)["']\s*:""")
BASE64URL_256_BITS = re.compile(r"[A-Za-z0-9_-]{43}")


def assert_no_private_material(outputs: Sequence[str], secrets: Iterable[str] = ()) -> None:
    """No PEM private key, no private JWK member used as a key, none of ``secrets``."""
    for text in outputs:
        assert "PRIVATE KEY" not in text, text
        assert not PRIVATE_MEMBER_AS_KEY.search(text), text
        for secret in secrets:
            assert secret not in text


def _walk_keys(document: Any) -> Iterable[str]:
    if isinstance(document, dict):
        for key, value in document.items():
            yield key
            yield from _walk_keys(value)
    elif isinstance(document, list):
        for item in document:
            yield from _walk_keys(item)


def sha256(text: str) -> bytes:
    return hashlib.sha256(text.encode()).digest()


# -- fixtures -----------------------------------------------------------------------------


@pytest.fixture
def bare(port: int, cwd: Path) -> Idp:
    """The command with a valid SQLite configuration, for tests that never reach storage."""
    return Idp(make_env("sqlite:///idp.db", port), cwd)


# -- migrate ------------------------------------------------------------------------------


def test_commands_need_the_schema_and_migrate_is_idempotent(idp: Idp) -> None:
    """Without a schema every command fails cleanly pointing at migrate; migrate runs once."""
    attempts = idp.concurrently(
        ("clients", "list"),
        ("clients", "create", "--name", "billing", "--json"),
        ("users", "create", "--username", "ada", "--password-stdin", "--json"),
        ("keys", "rotate", "--json"),
        ("keys", "revoke", "some-kid"),
        stdin="password one\n",
    )
    for attempt in attempts:
        attempt.fails(1, "idp migrate")

    first = idp("migrate").ok()
    assert first.stdout.startswith("applied migrations "), first.stdout
    second = idp("migrate").ok()
    assert second.stdout.strip() == "schema is up to date"
    assert idp("clients", "list", "--json").json() == []


# -- clients ------------------------------------------------------------------------------


def test_create_confidential_and_public_clients_json(migrated: Idp, database_url: str) -> None:
    """--json prints one object; the secret is 256 bits, shown once, stored as SHA-256 only."""
    confidential = migrated(
        "clients", "create", "--name", "Billing", "--json",
        "--redirect-uri", "https://app.example/cb",
        "--redirect-uri", "http://127.0.0.1:9000/cb",
        "--post-logout-redirect-uri", "https://app.example/bye",
        "--grant-type", "client_credentials",
        "--grant-type", "authorization_code",
        "--scope", "openid profile",
        "--audience", "https://api.example",
        "--token-endpoint-auth-method", "client_secret_post",
        "--access-token-alg", "ES256",
        "--id-token-alg", "ES256",
    ).json()  # fmt: skip
    public = migrated(
        "clients", "create", "--name", "SPA", "--public", "--json",
        "--redirect-uri", "https://spa.example/cb",
    ).json()  # fmt: skip

    assert isinstance(confidential, dict)
    secret = confidential["client_secret"]
    assert BASE64URL_256_BITS.fullmatch(secret), secret
    assert len(base64.urlsafe_b64decode(secret + "=")) == 32
    assert confidential["name"] == "Billing"
    assert confidential["redirect_uris"] == ["https://app.example/cb", "http://127.0.0.1:9000/cb"]
    assert confidential["post_logout_redirect_uris"] == ["https://app.example/bye"]
    assert confidential["grant_types"] == ["client_credentials", "authorization_code"]
    assert confidential["scope"] == "openid profile"
    assert confidential["audiences"] == ["https://api.example"]
    assert confidential["token_endpoint_auth_method"] == "client_secret_post"
    assert confidential["access_token_alg"] == confidential["id_token_alg"] == "ES256"

    assert isinstance(public, dict)
    assert "client_secret" not in public
    assert public["name"] == "SPA"
    assert public["redirect_uris"] == ["https://spa.example/cb"]
    assert public["grant_types"] == ["authorization_code", "refresh_token"]
    assert public["token_endpoint_auth_method"] == "none"
    assert public["client_id"] != confidential["client_id"]

    async def fetch(store: Store) -> tuple[Any, Any]:
        return (
            await store.get_client(confidential["client_id"]),
            await store.get_client(public["client_id"]),
        )

    stored_confidential, stored_public = with_store(database_url, fetch)
    assert stored_confidential is not None and stored_public is not None
    assert stored_confidential.secret_hash == sha256(secret)
    assert stored_confidential.scope == ("openid", "profile")
    assert stored_public.secret_hash is None
    assert stored_public.is_public


def test_client_text_mode_list_show_delete(migrated: Idp, database_url: str) -> None:
    """Text mode shows the id and the secret once; list/show never show it; delete removes."""
    text = migrated("clients", "create", "--name", "Reports").ok().stdout
    fields = dict(line.split(": ", 1) for line in text.splitlines() if ": " in line)
    client_id, secret = fields["client_id"], fields["client_secret"]
    assert BASE64URL_256_BITS.fullmatch(secret)
    assert text.count(secret) == 1
    stored = with_store(database_url, lambda store: store.get_client(client_id))
    assert stored is not None and stored.secret_hash == sha256(secret)

    other = migrated("clients", "create", "--name", "Other", "--json").json()

    listed = migrated("clients", "list", "--json").json()
    assert isinstance(listed, list)
    assert {c["client_id"]: c["name"] for c in listed} == {
        client_id: "Reports",
        other["client_id"]: "Other",
    }
    assert all("client_secret" not in c and "secret_hash" not in c for c in listed)

    shown = migrated("clients", "show", other["client_id"], "--json").json()
    assert shown == {k: v for k, v in other.items() if k != "client_secret"}

    migrated("clients", "delete", client_id).ok()
    migrated("clients", "show", client_id, "--json").fails(1, client_id)
    remaining = migrated("clients", "list", "--json").json()
    assert [c["client_id"] for c in remaining] == [other["client_id"]]
    for result_text in (json.dumps(listed), json.dumps(shown)):
        assert secret not in result_text and other["client_secret"] not in result_text


def test_client_create_rejects_bad_input_and_writes_nothing(migrated: Idp) -> None:
    """Each invalid registration exits 1 with one line; the store keeps only the valid one."""
    migrated("clients", "create", "--name", "dup").ok()
    # (arguments, a fragment the one-line reason must contain)
    bad: list[tuple[tuple[str, ...], str]] = [
        (("--name", "dup"), "dup"),
        (("--name", "a", "--redirect-uri", "http://app.example/cb"), "http://app.example/cb"),
        (("--name", "b", "--redirect-uri", "https://app.example/cb#frag"), "fragment"),
        (("--name", "c", "--redirect-uri", "/relative/cb"), "/relative/cb"),
        (("--name", "d", "--audience", "not a uri"), "audience"),
        (("--name", "e", "--public", "--grant-type", "client_credentials"), "client_credentials"),
        (
            (
                "--name", "f", "--public", "--redirect-uri", "https://app.example/cb",
                "--token-endpoint-auth-method", "client_secret_basic",
            ),
            "public",
        ),
    ]  # fmt: skip
    results = migrated.concurrently(*(("clients", "create", *a, "--json") for a, _ in bad))
    for result, (_, reason) in zip(results, bad, strict=True):
        result.fails(1, reason)
    listed = migrated("clients", "list", "--json").json()
    assert [c["name"] for c in listed] == ["dup"]


@pytest.mark.parametrize(
    ("args", "overrides"),
    [
        (("clients", "create", "--name", "x", "--bogus"), {}),
        (("clients", "create", "--name", "x", "--access-token-alg", "HS256"), {}),
        (("frobnicate",), {}),
        (("keys", "rotate", "--alg", "ES256"), {"IDP_SIGNING_ALGS": "RS256"}),
    ],
    ids=["unknown-option", "bad-alg", "unknown-command", "alg-not-configured"],
)
def test_usage_errors_exit_2(
    bare: Idp, cwd: Path, args: tuple[str, ...], overrides: dict[str, str]
) -> None:
    """Usage errors are one line with exit 2, before any storage is touched."""
    bare(*args, **overrides).fails(2)
    assert list(cwd.iterdir()) == []


# -- users --------------------------------------------------------------------------------


def test_users_create_and_list(migrated: Idp, database_url: str) -> None:
    """The password is one stdin line without its newline, kept only as an argon2id hash."""
    password = "  correct horse ✓ battery "
    created = migrated(
        "users", "create", "--username", "ada", "--password-stdin",
        "--email", "ada@example.com", "--name", "Ada Lovelace", "--json",
        stdin=password + "\n",
    ).json()  # fmt: skip
    assert isinstance(created, dict)
    assert created["username"] == "ada" and created["id"]
    assert created["email"] == "ada@example.com" and created["name"] == "Ada Lovelace"
    assert not {k for k in created if "password" in k or "hash" in k}

    migrated(
        "users", "create", "--username", "ada", "--password-stdin", stdin="other password\n"
    ).fails(1, "ada")
    migrated("users", "create", "--username", "bob", "--password-stdin").fails(1)

    listed = migrated("users", "list", "--json").json()
    assert listed == [created]

    users = with_store(database_url, lambda store: store.list_users())
    assert [u.id for u in users] == [created["id"]]
    stored_hash = users[0].password_hash
    assert stored_hash.startswith("$argon2id$")
    hasher = PasswordHasher()
    assert hasher.verify(stored_hash, password)
    for wrong in (password + "\n", password.strip()):
        with pytest.raises(VerifyMismatchError):
            hasher.verify(stored_hash, wrong)


def test_users_are_one_account_up_to_case_and_need_visible_names_and_long_passwords(
    migrated: Idp,
) -> None:
    """``Alice`` and ``alice`` are one account; invisible characters and short passwords fail."""
    create = ("users", "create", "--password-stdin", "--username")
    alice = migrated(*create, "Alice", "--json", stdin="long enough\n").json()
    for spelling in ("alice", "ALICE", "\uff41\uff4c\uff49\uff43\uff45"):
        migrated(*create, spelling, stdin="long enough\n").fails(1, "already exists")
    for invisible in ("bo\u200bb", "bob\u2060", "\ufeffbob", "bo\u0007b", "bo\u202eb"):
        migrated(*create, invisible, stdin="long enough\n").fails(1, "zero-width")
    short = "password too short: at least 8 characters are required"
    migrated(*create, "carol", stdin="seven77\n").fails(1, short)
    set_password = ("users", "set-password", "ALICE", "--password-stdin")
    migrated(*set_password, stdin="short\n").fails(1, short)
    update = ("users", "update", alice["id"], "--password-stdin")
    migrated(*update, stdin="short\n").fails(1, short)
    # IDP_PASSWORD_MIN_LENGTH raises the bar.
    migrated(*set_password, stdin="eleven char\n", IDP_PASSWORD_MIN_LENGTH="12").fails(
        1, "at least 12 characters"
    )
    migrated(*set_password, stdin="twelve chars\n", IDP_PASSWORD_MIN_LENGTH="12").ok()
    migrated(*update, stdin="eight ch\n").ok()
    listed = migrated("users", "list", "--json").json()
    assert [u["username"] for u in listed] == ["Alice"]


# -- keys ---------------------------------------------------------------------------------


def test_key_rotation_and_revocation(migrated: Idp, database_url: str) -> None:
    """Rotate creates the rings, then promotes next and retires active; revoke hands over."""
    results: list[Result] = []

    def run(*args: str) -> Result:
        result = migrated(*args)
        results.append(result)
        return result

    assert run("keys", "list", "--json").json() == []

    created = run("keys", "rotate", "--json").json()
    assert isinstance(created, list) and len(created) == 2
    first = by_alg(created)
    assert set(first) == set(ALGS)
    assert all(r["retired_kid"] is None for r in created)

    keys = {k["kid"]: k for k in run("keys", "list", "--json").json()}
    assert len(keys) == 4
    for alg in ALGS:
        active, waiting = keys[first[alg]["active_kid"]], keys[first[alg]["next_kid"]]
        assert (active["alg"], active["state"]) == (alg, "active")
        assert (waiting["alg"], waiting["state"]) == (alg, "next")
        assert active["created_at"] and active["activated_at"]
        assert waiting["created_at"] and waiting["activated_at"] is None
        assert active["retired_at"] is None and waiting["retired_at"] is None

    rotated = run("keys", "rotate", "--json").json()
    assert isinstance(rotated, list) and len(rotated) == 2
    second = by_alg(rotated)
    for alg in ALGS:
        assert second[alg]["active_kid"] == first[alg]["next_kid"]
        assert second[alg]["retired_kid"] == first[alg]["active_kid"]
        assert second[alg]["next_kid"] not in keys

    only_es = run("keys", "rotate", "--alg", "ES256", "--json").json()
    assert isinstance(only_es, dict)
    assert only_es["alg"] == "ES256"
    assert only_es["active_kid"] == second["ES256"]["next_kid"]
    assert only_es["retired_kid"] == second["ES256"]["active_kid"]

    victim = second["RS256"]["active_kid"]
    revoked = run("keys", "revoke", victim, "--json").json()
    assert revoked["kid"] == victim and revoked["state"] == "revoked" and revoked["revoked_at"]

    final = run("keys", "list", "--json").json()
    states = {k["kid"]: k["state"] for k in final}
    assert states[victim] == "revoked"
    assert states[first["RS256"]["active_kid"]] == "retired"
    assert states[first["ES256"]["active_kid"]] == "retired"
    assert states[second["ES256"]["active_kid"]] == "retired"
    assert states[only_es["active_kid"]] == "active"
    assert states[second["RS256"]["next_kid"]] == "active"
    for alg in ALGS:
        of_alg = [k for k in final if k["alg"] == alg]
        assert [k["state"] for k in of_alg].count("active") == 1
        assert "next" in {k["state"] for k in of_alg}
    for key in final:
        assert {"kid", "alg", "state", "created_at", "activated_at", "retired_at"} <= set(key)
        assert (key["retired_at"] is not None) == (key["state"] == "retired")

    run("keys", "revoke", victim).fails(1, victim)
    run("keys", "revoke", "no-such-kid").fails(1, "no-such-kid")
    text = run("keys", "list").ok().stdout
    assert all(kid in text for kid in states)

    # The private parts: none of their values, nor their member names, in any output.
    kek = decode_key_encryption_key("kek", migrated.env["IDP_KEY_ENCRYPTION_KEY"])
    records = with_store(database_url, lambda store: store.list_keys())
    private_values: list[str] = []
    for record in records:
        if record.kid == victim:
            assert record.private_key_sealed is None
            continue
        members = unseal(record, kek).as_dict(private=True)
        private_values += [str(members[m]) for m in PRIVATE_JWK_MEMBERS if m in members]
    assert private_values
    assert_no_private_material([r.output for r in results], private_values)
    for result in results:
        try:
            document = json.loads(result.stdout)
        except json.JSONDecodeError:
            continue
        assert not set(_walk_keys(document)) & set(PRIVATE_JWK_MEMBERS)


# -- configuration and environment --------------------------------------------------------


@pytest.mark.parametrize(
    ("variable", "overrides", "unset"),
    [
        ("IDP_ISSUER", {"IDP_ISSUER": "http://example.com"}, ()),
        ("IDP_ACCESS_TOKEN_TTL", {"IDP_ACCESS_TOKEN_TTL": "abc"}, ()),
        ("IDP_RSA_KEY_BITS", {"IDP_RSA_KEY_BITS": "12"}, ()),
        ("IDP_KEY_ENCRYPTION_KEY", {"IDP_KEY_ENCRYPTION_KEY": "short"}, ()),
        ("IDP_DATABASE_URL", {"IDP_DATABASE_URL": "mysql://x"}, ()),
        (
            "IDP_KEY_ENCRYPTION_KEY",
            {"IDP_DATABASE_URL": pg_base_url()},
            ("IDP_KEY_ENCRYPTION_KEY",),
        ),
    ],
    ids=["http-issuer", "ttl", "rsa-bits", "short-kek", "mysql", "postgresql-without-kek"],
)
def test_configuration_errors_exit_2(
    bare: Idp, cwd: Path, variable: str, overrides: dict[str, str], unset: tuple[str, ...]
) -> None:
    """A bad setting is one line naming the variable, exit 2, and nothing is created."""
    bare("migrate", unset=unset, **overrides).fails(2, variable)
    assert list(cwd.iterdir()) == []


def test_stopped_database_is_one_line(bare: Idp) -> None:
    """PostgreSQL not answering: exit 1, one line, no traceback, no password echoed."""
    url = f"postgresql://postgres:hunter2-pw@127.0.0.1:{free_port()}/postgres"
    line = bare("clients", "list", IDP_DATABASE_URL=url).fails(1)
    assert "hunter2-pw" not in line


def test_generate_kek_needs_no_configuration(bare: Idp) -> None:
    """generate-kek works even where the settings are incomplete (PostgreSQL, no key yet)."""
    result = bare(
        "generate-kek", unset=["IDP_KEY_ENCRYPTION_KEY"], IDP_DATABASE_URL=pg_base_url()
    ).ok()
    assert BASE64URL_256_BITS.fullmatch(result.stdout.strip()), result.stdout
    assert result.stdout.endswith("\n") and result.stdout.count("\n") == 1
    key = decode_key_encryption_key("generated", result.stdout)
    assert len(key) == 32


def test_sqlite_default_creates_database_and_key_file(cwd: Path) -> None:
    """With no database URL and no key, migrate makes var/idp.db and a 0600 key file beside it
    that later commands reuse, so keys sealed by one run unseal in the next (SQLite only)."""
    idp = Idp({}, cwd)
    idp("migrate").ok()
    database = cwd / "var" / "idp.db"
    key_file = cwd / "var" / "idp.db.kek"
    assert database.is_file()
    assert key_file.is_file()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    key_text = key_file.read_text()
    assert BASE64URL_256_BITS.fullmatch(key_text.strip())

    created = idp("keys", "rotate", "--json").json()
    rotated = idp("keys", "rotate", "--json").json()
    assert {r["alg"] for r in created} == {r["alg"] for r in rotated} == set(ALGS)
    assert all(r["retired_kid"] for r in rotated)
    assert key_file.read_text() == key_text
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600

    kek = decode_key_encryption_key("file", key_text)
    records = with_store(f"sqlite:///{database}", lambda store: store.list_keys())
    assert len(records) == 6
    for record in records:
        unseal(record, kek)


# -- known bugs ---------------------------------------------------------------------------


def test_unusable_sqlite_path_is_one_line(bare: Idp, cwd: Path) -> None:
    """A database path under a regular file fails cleanly (SQLite only by nature)."""
    (cwd / "occupied").write_text("not a directory\n")
    bare("migrate", IDP_DATABASE_URL=f"sqlite:///{cwd}/occupied/idp.db").fails(1)


def test_unusable_key_file_location_is_a_configuration_error(cwd: Path) -> None:
    """The default key file cannot be read (it is a directory): one line, exit 2."""
    (cwd / "var" / "idp.db.kek").mkdir(parents=True)
    Idp({}, cwd)("migrate").fails(2, "IDP_KEY_ENCRYPTION_KEY", "idp.db.kek")


def test_password_not_utf8_is_one_line(migrated: Idp) -> None:
    """Invalid UTF-8 on stdin is rejected with one line and no user is created."""
    args = ("users", "create", "--username", "eve", "--password-stdin")
    migrated(*args, stdin=b"\xff\xfepw\n").fails(1)
    assert migrated("users", "list", "--json").json() == []


def test_argument_not_utf8_is_one_line(migrated: Idp) -> None:
    """A client name that is not UTF-8 is a usage error and nothing is stored."""
    migrated("clients", "create", "--name", b"\xff").fails(2)
    assert migrated("clients", "list", "--json").json() == []
