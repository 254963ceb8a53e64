"""Second factors in the store: TOTP credentials, recovery codes, what a session proved, and
the user and client flags (one winner of concurrent uses of a code or a time step)."""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import replace

import pytest

from idp.config import Settings
from idp.store.base import AuditEntry, Store, TotpCredential
from tests.support.records import a_code, a_session, a_user, a_web_client
from tests.support.stores import open_stores

pytestmark = pytest.mark.anyio


def _audit(action: str) -> AuditEntry:
    return AuditEntry(100.0, "user:u1", action, "u1")


def _pending(secret: bytes = b"sealed") -> TotpCredential:
    return TotpCredential("u1", secret, "pending", 100.0)


def _hashes(*codes: str) -> list[bytes]:
    return [hashlib.sha256(code.encode()).digest() for code in codes]


async def test_pending_credential_is_replaced_until_it_is_activated(seeded: Store) -> None:
    assert await seeded.get_totp("u1") is None
    assert await seeded.put_pending_totp(_pending(b"first"))
    assert await seeded.put_pending_totp(_pending(b"second"))
    stored = await seeded.get_totp("u1")
    assert stored == _pending(b"second")

    assert await seeded.activate_totp("u1", 7, 110.0, _hashes("a", "b"), _audit("enable"))
    active = await seeded.get_totp("u1")
    assert active is not None
    assert (active.state, active.activated_at, active.last_step) == ("active", 110.0, 7)
    assert await seeded.count_recovery_codes("u1") == 2
    # An active credential is neither replaced by a pending one nor activated again.
    assert not await seeded.put_pending_totp(_pending(b"third"))
    assert not await seeded.activate_totp("u1", 8, 120.0, _hashes("c"), _audit("enable"))
    assert (await seeded.get_totp("u1")) == active
    assert [e.action for e in await seeded.list_audit()] == ["enable"]


async def test_a_time_step_is_accepted_once_and_never_an_older_one(seeded: Store) -> None:
    assert not await seeded.use_totp_step("u1", 5)  # nothing active
    await seeded.put_pending_totp(_pending())
    assert not await seeded.use_totp_step("u1", 5)  # pending only
    await seeded.activate_totp("u1", 5, 110.0, [], _audit("enable"))
    assert not await seeded.use_totp_step("u1", 5)  # the confirming step is used
    assert await seeded.use_totp_step("u1", 6)
    assert not await seeded.use_totp_step("u1", 6)
    assert not await seeded.use_totp_step("u1", 4)
    assert await seeded.use_totp_step("u1", 8)


async def test_concurrent_uses_of_one_time_step_have_one_winner(
    seeded: Store, settings: Settings
) -> None:
    await seeded.put_pending_totp(_pending())
    await seeded.activate_totp("u1", 5, 110.0, [], _audit("enable"))
    async with open_stores(settings.database_url, 3) as others:
        contenders = [seeded, *others] * 4
        results = await asyncio.gather(*(s.use_totp_step("u1", 9) for s in contenders))
    assert results.count(True) == 1


async def test_recovery_codes_are_used_once_and_replaced_whole(seeded: Store) -> None:
    await seeded.put_pending_totp(_pending())
    await seeded.activate_totp("u1", 5, 110.0, _hashes("a", "b", "c"), _audit("enable"))
    [a, b, c] = _hashes("a", "b", "c")
    assert await seeded.use_recovery_code("u1", a, 120.0)
    assert not await seeded.use_recovery_code("u1", a, 121.0)
    assert not await seeded.use_recovery_code("u1", _hashes("z")[0], 121.0)
    await seeded.create_user(a_user("u2", "bob"))
    assert not await seeded.use_recovery_code("u2", b, 121.0)  # another user's code
    assert await seeded.count_recovery_codes("u1") == 2

    await seeded.replace_recovery_codes("u1", _hashes("d"), 130.0, _audit("new codes"))
    assert not await seeded.use_recovery_code("u1", b, 131.0)
    assert await seeded.count_recovery_codes("u1") == 1
    assert await seeded.use_recovery_code("u1", _hashes("d")[0], 132.0)
    assert await seeded.count_recovery_codes("u1") == 0
    assert c  # unused, and gone with the replacement


async def test_concurrent_uses_of_one_recovery_code_have_one_winner(
    seeded: Store, settings: Settings
) -> None:
    await seeded.put_pending_totp(_pending())
    await seeded.activate_totp("u1", 5, 110.0, _hashes("a"), _audit("enable"))
    async with open_stores(settings.database_url, 3) as others:
        contenders = [seeded, *others] * 4
        results = await asyncio.gather(
            *(s.use_recovery_code("u1", _hashes("a")[0], 120.0) for s in contenders)
        )
    assert results.count(True) == 1


async def test_deleting_second_factors_is_audited_only_when_there_were_any(
    seeded: Store,
) -> None:
    assert not await seeded.delete_second_factors("u1", _audit("reset"))
    await seeded.put_pending_totp(_pending())
    await seeded.activate_totp("u1", 5, 110.0, _hashes("a"), _audit("enable"))
    assert await seeded.delete_second_factors("u1", _audit("reset"))
    assert await seeded.get_totp("u1") is None
    assert await seeded.count_recovery_codes("u1") == 0
    assert [e.action for e in await seeded.list_audit()] == ["enable", "reset"]


async def test_a_session_records_how_its_user_authenticated(seeded: Store) -> None:
    session = a_session()
    await seeded.create_session(session)
    stored = await seeded.get_session(session.id)
    assert stored is not None
    assert (stored.amr, stored.acr, stored.second_factor_at) == (("pwd",), None, None)

    mfa = ("pwd", "otp", "mfa")
    assert await seeded.record_authentication(session.id, mfa, "urn:idp:acr:mfa", 150.0, True)
    raised = await seeded.get_session(session.id)
    assert raised == replace(
        session, amr=mfa, acr="urn:idp:acr:mfa", auth_time=150.0, second_factor_at=150.0
    )
    # A password-only re-authentication moves auth_time, not the second factor's time.
    assert await seeded.record_authentication(session.id, ("pwd",), "urn:idp:acr:pwd", 160.0, False)
    again = await seeded.get_session(session.id)
    assert again is not None and (again.auth_time, again.second_factor_at) == (160.0, 150.0)

    await seeded.end_session(session.id, 170.0)
    assert not await seeded.record_authentication(session.id, mfa, "urn:idp:acr:mfa", 180.0, True)


async def test_codes_carry_amr_and_acr_and_flags_round_trip(seeded: Store) -> None:
    code = a_code(amr=("pwd", "otp", "mfa"), acr="urn:idp:acr:mfa")
    await seeded.create_authorization_code(code)
    redeemed = await seeded.consume_authorization_code(code.code_hash, 110.0)
    assert redeemed is not None
    assert (redeemed.code.amr, redeemed.code.acr) == (("pwd", "otp", "mfa"), "urn:idp:acr:mfa")

    strict = a_web_client("strict", name="strict", require_mfa=True)
    await seeded.create_client(strict)
    assert await seeded.get_client("strict") == strict
    user = await seeded.get_user("u1")
    assert user is not None and not user.mfa_required
    await seeded.update_user(replace(user, mfa_required=True))
    assert await seeded.get_user("u1") == replace(user, mfa_required=True)


async def test_totp_secrets_are_resealed_in_one_audited_transaction(seeded: Store) -> None:
    await seeded.create_user(a_user("u2", "bob"))
    await seeded.put_pending_totp(_pending(b"one"))
    await seeded.put_pending_totp(replace(_pending(b"two"), user_id="u2"))

    def reseal(credential: TotpCredential) -> bytes | None:
        return None if credential.user_id == "u2" else credential.secret_sealed + b"!"

    assert await seeded.reseal_totp_secrets(reseal, _audit("rewrap")) == 1
    one, two = await seeded.get_totp("u1"), await seeded.get_totp("u2")
    assert one is not None and one.secret_sealed == b"one!"
    assert two is not None and two.secret_sealed == b"two"
    assert await seeded.reseal_totp_secrets(lambda c: None, _audit("rewrap")) == 0
    assert [e.action for e in await seeded.list_audit()] == ["rewrap"]
