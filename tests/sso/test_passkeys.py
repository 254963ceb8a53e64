"""The passkey ceremonies and the passkey sign-in service over each store, with a software
authenticator (tests/support/authenticator.py): what is accepted, what is refused and why."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest

from idp.admin.context import AdminContext
from idp.admin.users import create_user
from idp.config import Settings, load_settings, new_key_encryption_key
from idp.sso import outcomes
from idp.sso.passkeys import (
    PasskeyRefused,
    VerifiedPasskey,
    begin_authentication,
    begin_registration,
    finish_registration,
    relying_party,
    verify_passkey_assertion,
)
from idp.sso.reauth import reauthenticate
from idp.sso.sessions import start_session
from idp.sso.signin import answer_authorization_request, sign_in, sign_in_with_passkey
from idp.store.base import PasskeyRecord, Store, UserRecord
from tests.support.authenticator import SoftAuthenticator, b64url
from tests.support.records import a_web_client
from tests.support.signin import SignInParts, signin_services
from tests.support.sso import PASSWORD, pkce_pair

pytestmark = pytest.mark.anyio

ORIGIN = "http://localhost:9443"
BROWSER = "b" * 43


@pytest.fixture
async def parts(settings: Settings, store: Store) -> AsyncIterator[SignInParts]:
    async with signin_services(replace(settings, issuer=ORIGIN), store) as services:
        yield services


@pytest.fixture
async def alice(settings: Settings, store: Store) -> UserRecord:
    return await create_user(AdminContext(store, settings), "alice", PASSWORD)


@pytest.fixture
async def bob(settings: Settings, store: Store) -> UserRecord:
    return await create_user(AdminContext(store, settings), "bob", PASSWORD)


async def register(
    parts: SignInParts, user: UserRecord, device: SoftAuthenticator, name: str = "Laptop"
) -> PasskeyRecord:
    ceremony = await begin_registration(
        parts.store, parts.settings, parts.clock, user, browser=BROWSER
    )
    options = json.loads(ceremony.options_json)
    return await finish_registration(
        parts.store,
        parts.settings,
        parts.clock,
        user,
        challenge_id=ceremony.challenge_id,
        credential_json=device.create(options),
        name=name,
        browser=BROWSER,
    )


async def assert_with(
    parts: SignInParts,
    device: SoftAuthenticator,
    *,
    user: UserRecord | None = None,
    browser: str = BROWSER,
    answer_browser: str = BROWSER,
) -> VerifiedPasskey:
    ceremony = await begin_authentication(
        parts.store, parts.settings, parts.clock, browser=browser, user=user
    )
    return await verify_passkey_assertion(
        parts.store,
        parts.settings,
        parts.clock,
        challenge_id=ceremony.challenge_id,
        credential_json=device.get(json.loads(ceremony.options_json)),
        browser=answer_browser,
        user_id=user.id if user else None,
    )


async def test_registration_keeps_the_credential_under_a_random_user_handle(
    parts: SignInParts, alice: UserRecord
) -> None:
    device = SoftAuthenticator(ORIGIN)
    ceremony = await begin_registration(
        parts.store, parts.settings, parts.clock, alice, browser=BROWSER
    )
    options = json.loads(ceremony.options_json)
    assert options["rp"] == {"id": "localhost", "name": parts.settings.webauthn_rp_name}
    assert options["authenticatorSelection"]["residentKey"] == "required"
    assert options["user"]["name"] == "alice" and options["user"]["id"] != "alice"
    passkey = await finish_registration(
        parts.store, parts.settings, parts.clock, alice, challenge_id=ceremony.challenge_id,
        credential_json=device.create(options), name="  My   laptop ", browser=BROWSER,
    )  # fmt: skip
    assert passkey.name == "My laptop" and passkey.transports == ("internal",)
    assert await parts.store.list_passkeys(alice.id) == [passkey]
    assert device.credentials[0].user_handle == await parts.store.get_webauthn_user_handle(alice.id)
    # The same challenge cannot register a second credential.
    with pytest.raises(PasskeyRefused) as refused:
        await finish_registration(
            parts.store, parts.settings, parts.clock, alice, challenge_id=ceremony.challenge_id,
            credential_json=device.create(options), name="Again", browser=BROWSER,
        )  # fmt: skip
    assert refused.value.reason == "challenge"
    # A second registration excludes the credential already there.
    again = await begin_registration(
        parts.store, parts.settings, parts.clock, alice, browser=BROWSER
    )
    excluded = json.loads(again.options_json)["excludeCredentials"]
    assert [e["id"] for e in excluded] == [b64url(device.credentials[0].credential_id)]


async def test_registration_from_another_origin_is_refused(
    parts: SignInParts, alice: UserRecord
) -> None:
    with pytest.raises(PasskeyRefused) as refused:
        await register(parts, alice, SoftAuthenticator("http://localhost:9999"))
    assert refused.value.reason == "invalid"
    assert await parts.store.list_passkeys(alice.id) == []


async def test_a_known_users_assertion_verifies_and_moves_the_counter(
    parts: SignInParts, alice: UserRecord
) -> None:
    device = SoftAuthenticator(ORIGIN, verifies_user=False)
    await register(parts, alice, device)
    verified = await assert_with(parts, device, user=alice)
    assert verified.user.id == alice.id and not verified.user_verified
    assert verified.passkey.sign_count == 1 and verified.passkey.last_used_at == parts.clock()
    assert verified.amr == ("hwk", "user")
    synced = SoftAuthenticator(ORIGIN, backup_eligible=True)
    await register(parts, alice, synced, "Phone")
    assert (await assert_with(parts, synced, user=alice)).amr == ("swk", "user", "mfa")


async def test_another_users_credential_is_refused_for_a_known_user(
    parts: SignInParts, alice: UserRecord, bob: UserRecord
) -> None:
    alices, bobs = SoftAuthenticator(ORIGIN), SoftAuthenticator(ORIGIN)
    await register(parts, alice, alices)
    await register(parts, bob, bobs)
    ceremony = await begin_authentication(
        parts.store, parts.settings, parts.clock, browser=BROWSER, user=alice
    )
    options = json.loads(ceremony.options_json)
    with pytest.raises(PasskeyRefused) as refused:
        await verify_passkey_assertion(
            parts.store, parts.settings, parts.clock, challenge_id=ceremony.challenge_id,
            credential_json=bobs.get(options, bobs.credentials[0]), browser=BROWSER,
            user_id=alice.id,
        )  # fmt: skip
    assert refused.value.reason == "other_user"


async def test_a_credential_claiming_another_users_handle_is_refused(
    parts: SignInParts, alice: UserRecord, bob: UserRecord
) -> None:
    alices, bobs = SoftAuthenticator(ORIGIN), SoftAuthenticator(ORIGIN)
    await register(parts, alice, alices)
    await register(parts, bob, bobs)
    bobs.credentials[0].user_handle = alices.credentials[0].user_handle
    with pytest.raises(PasskeyRefused) as refused:
        await assert_with(parts, bobs)
    assert refused.value.reason == "other_user"


async def test_usernameless_sign_in_requires_user_verification(
    parts: SignInParts, alice: UserRecord
) -> None:
    device = SoftAuthenticator(ORIGIN)
    await register(parts, alice, device)
    assert (await assert_with(parts, device)).user.id == alice.id
    device.verifies_user = False
    with pytest.raises(PasskeyRefused) as refused:
        await assert_with(parts, device)
    assert refused.value.reason == "invalid"


async def test_challenges_are_single_use_bound_to_the_browser_and_short_lived(
    parts: SignInParts, alice: UserRecord
) -> None:
    device = SoftAuthenticator(ORIGIN)
    await register(parts, alice, device)
    with pytest.raises(PasskeyRefused) as elsewhere:
        await assert_with(parts, device, answer_browser="c" * 43)
    assert elsewhere.value.reason == "challenge"

    ceremony = await begin_authentication(parts.store, parts.settings, parts.clock, browser=BROWSER)
    answer = device.get(json.loads(ceremony.options_json))
    verify = {"challenge_id": ceremony.challenge_id, "credential_json": answer, "browser": BROWSER}
    await verify_passkey_assertion(parts.store, parts.settings, parts.clock, **verify)
    with pytest.raises(PasskeyRefused) as replayed:
        await verify_passkey_assertion(parts.store, parts.settings, parts.clock, **verify)
    assert replayed.value.reason == "challenge"

    late = await begin_authentication(parts.store, parts.settings, parts.clock, browser=BROWSER)
    parts.clock.advance(301)
    with pytest.raises(PasskeyRefused) as expired:
        await verify_passkey_assertion(
            parts.store, parts.settings, parts.clock, challenge_id=late.challenge_id,
            credential_json=device.get(json.loads(late.options_json)), browser=BROWSER,
        )  # fmt: skip
    assert expired.value.reason == "challenge"


async def test_a_counter_going_back_is_refused_and_audited_as_a_clone(
    parts: SignInParts, alice: UserRecord
) -> None:
    device = SoftAuthenticator(ORIGIN)
    await register(parts, alice, device)
    await assert_with(parts, device)
    await assert_with(parts, device)
    device.credentials[0].sign_count = 0  # a copy made after the first use
    with pytest.raises(PasskeyRefused) as refused:
        await assert_with(parts, device)
    assert refused.value.reason == "counter_went_back"
    [stored] = await parts.store.list_passkeys(alice.id)
    assert stored.sign_count == 2
    [clone] = [e for e in await parts.store.list_audit() if e.action == "passkey.clone_suspected"]
    assert clone.target == alice.id and clone.outcome == "failure"
    assert (clone.detail["stored_count"], clone.detail["presented_count"]) == (2, 1)


async def test_passkey_sign_in_answers_the_request_in_a_new_session(
    parts: SignInParts, alice: UserRecord
) -> None:
    await parts.store.create_client(a_web_client())
    device = SoftAuthenticator(ORIGIN)
    await register(parts, alice, device)
    _, challenge = pkce_pair()
    form = await answer_authorization_request(
        parts,
        {"client_id": "web", "redirect_uri": "https://app.example/cb", "response_type": "code",
         "scope": "openid", "code_challenge": challenge, "code_challenge_method": "S256"},
        session_cookie=None,
    )  # fmt: skip
    assert isinstance(form, outcomes.ShowLoginForm)

    async def attempt(device: SoftAuthenticator) -> outcomes.SignInOutcome:
        ceremony = await begin_authentication(
            parts.store, parts.settings, parts.clock, browser=BROWSER
        )
        return await sign_in_with_passkey(
            parts, form.request, challenge_id=ceremony.challenge_id,
            credential_json=device.get(json.loads(ceremony.options_json)), browser=BROWSER,
            client_address="192.0.2.9", session_cookie=None,
        )  # fmt: skip

    done = await attempt(device)
    assert isinstance(done, outcomes.RedirectWithCode) and done.new_session is not None
    assert done.new_session.record.user_id == alice.id
    assert done.location.startswith("https://app.example/cb?code=")
    stranger = SoftAuthenticator(ORIGIN)
    stranger.create({"rp": {"id": "localhost"}, "user": {"id": "AAAA"}, "challenge": "x"})
    refused = await attempt(stranger)
    assert isinstance(refused, outcomes.ShowLoginForm) and refused.error
    rows = [e for e in await parts.store.list_audit() if e.action == "passkey.sign_in"]
    assert [(e.outcome, e.target) for e in rows] == [("success", alice.id), ("failure", "")]
    assert rows[1].detail["reason"] == "unknown_credential"


async def test_passkey_sign_in_is_throttled_per_address(
    parts: SignInParts, alice: UserRecord
) -> None:
    await parts.store.create_client(a_web_client())
    parts.settings = replace(parts.settings, login_max_failures_per_ip=1)
    _, challenge = pkce_pair()
    form = await answer_authorization_request(
        parts,
        {"client_id": "web", "redirect_uri": "https://app.example/cb", "response_type": "code",
         "scope": "openid", "code_challenge": challenge, "code_challenge_method": "S256"},
        session_cookie=None,
    )  # fmt: skip
    assert isinstance(form, outcomes.ShowLoginForm)
    answers = []
    for _ in range(3):
        answer = await sign_in_with_passkey(
            parts,
            form.request,
            challenge_id="nope",
            credential_json="{}",
            browser=BROWSER,
            client_address="192.0.2.10",
            session_cookie=None,
        )
        answers.append(answer)
    assert isinstance(answers[0], outcomes.ShowLoginForm)
    assert isinstance(answers[-1], outcomes.Throttled) and answers[-1].retry_after >= 1


@pytest.mark.parametrize(
    ("issuer", "rp_id", "origin"),
    [
        ("https://id.example", "id.example", "https://id.example"),
        ("https://id.example:443", "id.example", "https://id.example"),
        ("https://id.example:8443", "id.example", "https://id.example:8443"),
        ("http://localhost:9443", "localhost", "http://localhost:9443"),
    ],
)
def test_the_relying_party_is_the_issuers_host_and_origin(
    issuer: str, rp_id: str, origin: str
) -> None:
    env = {"IDP_ISSUER": issuer, "IDP_KEY_ENCRYPTION_KEY": new_key_encryption_key()}
    party = relying_party(load_settings(env))
    assert (party.id, party.origin) == (rp_id, origin)


async def test_a_password_sign_in_asks_a_passkey_only_account_for_its_passkey(
    parts: SignInParts, alice: UserRecord
) -> None:
    await parts.store.create_client(a_web_client())
    _, challenge = pkce_pair()
    form = await answer_authorization_request(
        parts,
        {"client_id": "web", "redirect_uri": "https://app.example/cb", "response_type": "code",
         "scope": "openid", "code_challenge": challenge, "code_challenge_method": "S256"},
        session_cookie=None,
    )  # fmt: skip
    assert isinstance(form, outcomes.ShowLoginForm)
    await register(parts, alice, SoftAuthenticator(ORIGIN))
    asked = await sign_in(
        parts, form.request, username="alice", password=PASSWORD,
        client_address="192.0.2.11", session_cookie=None,
    )  # fmt: skip
    assert isinstance(asked, outcomes.SecondFactorNeeded)
    assert (asked.code, asked.passkey) == (False, True)


async def test_a_passkey_only_account_reauthenticates_with_its_password(
    parts: SignInParts, alice: UserRecord
) -> None:
    await register(parts, alice, SoftAuthenticator(ORIGIN))
    new = await start_session(
        parts.store, parts.settings, parts.clock, alice.id, methods=("pwd", "hwk", "mfa")
    )
    parts.clock.advance(parts.settings.reauth_max_age + 1)
    wrong = await reauthenticate(
        parts, new.record, alice, password="wrong", code="", client_address="192.0.2.12"
    )
    assert wrong is not None
    done = await reauthenticate(
        parts, new.record, alice, password=PASSWORD, code="", client_address="192.0.2.12"
    )
    assert done is None
