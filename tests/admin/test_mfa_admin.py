"""Second factors for administrators, on both stores: ``idp users mfa|mfa-reset|require-mfa``
and ``idp clients create|update --require-mfa`` as subprocesses, and the admin API's
equivalents, audited alike."""

from __future__ import annotations

import secrets

import httpx
import pyotp
import pytest
from openapi_spec_validator import validate

from idp.admin.context import AdminContext
from idp.admin.factors import reset_mfa
from idp.admin.keys import rewrap_keys
from idp.admin.users import UserRef, create_user
from idp.clock import system_clock
from idp.config import Settings, load_settings
from idp.keyring.changes import ensure_key_rings
from idp.sso.factors import begin_totp, has_second_factor, open_secret, resealed_secret
from idp.store.base import Store
from tests.support.admin_api import audit
from tests.support.cli import Idp
from tests.support.factors import enrol_totp
from tests.support.records import a_passkey
from tests.support.server import LiveServer, with_store

Admin = tuple[str, dict[str, str]]
PASSWORD = "first password\n"


def test_users_mfa_commands_show_reset_and_require(migrated: Idp, database_url: str) -> None:
    made = migrated(
        "users", "create", "--username", "Ada", "--password-stdin", "--json", stdin=PASSWORD
    ).json()
    settings = load_settings(migrated.env)
    status = migrated("users", "mfa", "ada", "--json").json()
    assert status == {
        "id": made["id"],
        "username": "Ada",
        "totp": "none",
        "recovery_codes_left": 0,
        "mfa_required": False,
    }
    enrol_totp(settings, made["id"], system_clock)
    text = migrated("users", "mfa", "Ada").ok().stdout
    assert text == "user Ada: TOTP active, 10 recovery code(s) left, second factor not required\n"

    required = migrated("users", "require-mfa", "ada", "--json").json()
    assert required["mfa_required"] is True and required["totp"] == "active"
    assert migrated("users", "show", made["id"], "--json").ok()
    reset = migrated("users", "mfa-reset", "ada", "--json").json()
    assert reset["reset"] is True and reset["totp"] == "none" and reset["recovery_codes_left"] == 0
    again = migrated("users", "mfa-reset", "ada").ok().stdout
    assert again == "user Ada had no second factor to remove\n"
    off = migrated("users", "require-mfa", "ada", "--off", "--json").json()
    assert off["mfa_required"] is False
    migrated("users", "mfa", "nobody").fails(1, "no user named 'nobody'")

    rows = with_store(database_url, lambda s: s.list_audit())
    changes = [(r.action, dict(r.detail)) for r in rows if r.action.startswith("user.")]
    assert changes == [
        ("user.create", {"username": "Ada"}),
        ("user.require_mfa", {"required": True}),
        ("user.mfa_reset", {"username": "Ada"}),
        ("user.require_mfa", {"required": False}),
    ]
    assert all(r.actor.startswith("cli") for r in rows if r.action.startswith("user."))


def test_clients_require_mfa_on_create_and_update(migrated: Idp) -> None:
    created = migrated(
        "clients", "create", "--name", "vault", "--public",
        "--redirect-uri", "https://vault.example/cb", "--require-mfa", "--json",
    ).json()  # fmt: skip
    assert created["require_mfa"] is True
    client_id = created["client_id"]
    off = migrated("clients", "update", client_id, "--no-require-mfa", "--json").json()
    assert off["require_mfa"] is False
    kept = migrated("clients", "update", client_id, "--name", "vault 2", "--json").json()
    assert kept["require_mfa"] is False
    on = migrated("clients", "update", client_id, "--require-mfa", "--json").json()
    assert on["require_mfa"] is True


def test_admin_api_mfa_operations_match_the_cli(
    live_server: LiveServer, http: httpx.Client, admin: Admin
) -> None:
    admin_id, headers = admin
    made = http.post(
        "/admin/users", json={"username": "Ada", "password": "long enough"}, headers=headers
    ).json()
    path = f"/admin/users/{made['id']}"
    assert http.get(f"{path}/mfa", headers=headers).json()["totp"] == "none"
    enrol_totp(live_server.settings, made["id"], system_clock)
    status = http.get(f"{path}/mfa", headers=headers).json()
    assert status["totp"] == "active" and status["recovery_codes_left"] == 10

    required = http.post(f"{path}/require-mfa", headers=headers)
    assert required.status_code == 200 and required.json()["mfa_required"] is True
    off = http.post(f"{path}/require-mfa", json={"required": False}, headers=headers)
    assert off.json()["mfa_required"] is False
    bad = http.post(f"{path}/require-mfa", json={"required": "yes"}, headers=headers)
    assert bad.status_code == 400
    reset = http.post(f"{path}/mfa/reset", headers=headers).json()
    assert reset["reset"] is True and reset["totp"] == "none"
    assert http.get("/admin/users/nobody/mfa", headers=headers).status_code == 404
    assert http.get(f"{path}/mfa").status_code == 401

    client = http.post(
        "/admin/clients",
        json={"name": "vault", "public": True, "redirect_uris": ["https://v.example/cb"],
              "grant_types": ["authorization_code"], "require_mfa": True},
        headers=headers,
    ).json()  # fmt: skip
    assert client["require_mfa"] is True
    changed = http.patch(
        f"/admin/clients/{client['client_id']}", json={"require_mfa": False}, headers=headers
    ).json()
    assert changed["require_mfa"] is False

    rows = [
        r
        for r in audit(live_server)
        if r.action in ("user.require_mfa", "user.mfa_reset") and r.outcome == "success"
    ]
    assert [(r.action, r.actor, r.subject, r.target) for r in rows] == [
        ("user.require_mfa", f"admin:{admin_id}", admin_id, made["id"]),
        ("user.require_mfa", f"admin:{admin_id}", admin_id, made["id"]),
        ("user.mfa_reset", f"admin:{admin_id}", admin_id, made["id"]),
    ]
    document = http.get("/admin/openapi.json").json()
    validate(document)
    assert set(document["paths"]["/admin/users/{user_id}/mfa"]) == {"get"}
    assert set(document["paths"]["/admin/users/{user_id}/mfa/reset"]) == {"post"}
    assert set(document["paths"]["/admin/users/{user_id}/require-mfa"]) == {"post"}


@pytest.mark.anyio
async def test_rewrap_reseals_totp_secrets_under_the_new_key(
    store: Store, settings: Settings
) -> None:
    ctx = AdminContext(store, settings)
    await ensure_key_rings(store, settings)
    user = await create_user(ctx, "ada", "long enough")
    enrolment = await begin_totp(store, settings, system_clock, user)
    assert enrolment is not None
    new_key = secrets.token_bytes(32)
    await rewrap_keys(ctx, new_key)
    credential = await store.get_totp(user.id)
    assert credential is not None
    assert open_secret(credential, settings.key_encryption_key) is None
    opened = open_secret(credential, new_key)
    assert opened is not None and pyotp.TOTP(enrolment.secret).byte_secret() == opened
    actions = [e.action for e in await store.list_audit()]
    assert "key.rewrap" in actions and "mfa.totp.rewrap" in actions


@pytest.mark.anyio
async def test_a_rewrap_cut_short_after_the_totp_secrets_runs_again(
    store: Store, settings: Settings
) -> None:
    ctx = AdminContext(store, settings)
    await ensure_key_rings(store, settings)
    user = await create_user(ctx, "ada", "long enough")
    assert await begin_totp(store, settings, system_clock, user) is not None
    new_key, old_key = secrets.token_bytes(32), settings.key_encryption_key
    # As if the first run stopped after the TOTP step: the secrets are already under the new key.
    await store.reseal_totp_secrets(lambda c: resealed_secret(c, old_key, new_key))
    assert len(await rewrap_keys(ctx, new_key)) >= 1
    credential = await store.get_totp(user.id)
    assert credential is not None and open_secret(credential, new_key) is not None


@pytest.mark.anyio
async def test_a_reset_removes_passkeys_too(store: Store, settings: Settings) -> None:
    ctx = AdminContext(store, settings)
    user = await create_user(ctx, "ada", "long enough")
    other = await create_user(ctx, "bob", "long enough")
    await store.add_passkey(a_passkey(b"ada-key", user_id=user.id))
    await store.add_passkey(a_passkey(b"bob-key", user_id=other.id))
    assert await has_second_factor(store, user.id)  # a passkey alone is a second factor
    _, _, removed = await reset_mfa(ctx, UserRef(id=user.id))
    assert removed and not await has_second_factor(store, user.id)
    assert [p.credential_id for p in await store.list_passkeys(other.id)] == [b"bob-key"]
    [row] = [e for e in await store.list_audit() if e.action == "passkey.remove"]
    assert row.target == user.id and row.detail["name"] == "Laptop"
    _, _, again = await reset_mfa(ctx, UserRef(id=user.id))
    assert again is False
