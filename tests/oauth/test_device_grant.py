"""The device authorization grant (RFC 8628) over a real server, on both stores: the device
authorization endpoint, the verification page driven as a browser would, and every answer
of the token endpoint to a polling device."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from idp.oauth.device import (
    DEVICE_CODE_GRANT,
    USER_CODE_ALPHABET,
    device_code_hash,
    normalise_user_code,
    user_code_hash,
)
from idp.store.base import DeviceCodeRecord, Store
from tests.support.admin_api import audit
from tests.support.cli import Idp
from tests.support.server import register_client, with_store
from tests.support.sso import PASSWORD, WEB_CB, World, hidden_inputs, verify_jwt

USER_CODE = re.compile(f"[{USER_CODE_ALPHABET}]{{4}}-[{USER_CODE_ALPHABET}]{{4}}")
WRONG_CODE = "That code is not valid."


def device_client(world: World, name: str = "TV app", **fields: Any) -> str:
    """A public client registered for the device grant (and refresh tokens)."""
    grants = fields.pop("grant_types", [DEVICE_CODE_GRANT, "refresh_token"])
    client_id, _ = register_client(
        world.server.settings, name, public=True, grant_types=grants, **fields
    )
    return client_id


def start(world: World, client_id: str, **extra: str) -> httpx.Response:
    data = {"client_id": client_id, "scope": "openid profile offline_access", **extra}
    return httpx.post(f"{world.url}/device_authorization", data=data, timeout=30)


def started(world: World, client_id: str, **extra: str) -> dict[str, Any]:
    answer = start(world, client_id, **extra)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def poll(world: World, client_id: str, device_code: str) -> httpx.Response:
    data = {"grant_type": DEVICE_CODE_GRANT, "device_code": device_code, "client_id": client_id}
    return httpx.post(f"{world.url}/token", data=data, timeout=30)


def error_of(answer: httpx.Response) -> str:
    assert answer.status_code == 400, answer.text
    return str(answer.json()["error"])


def sign_in_at_device(browser: httpx.Client, user_code: str) -> None:
    """Send ``browser`` from /device to the account sign-in and back, user code and all."""
    first = browser.get("/device", params={"user_code": user_code})
    assert first.status_code == 303, first.text
    assert first.headers["location"].startswith("/account/login?next=")
    login = browser.get(first.headers["location"])
    fields = hidden_inputs(login.text)
    signed = browser.post(
        "/account/login",
        data={
            "request": fields["request"],
            "csrf": fields["csrf"],
            "username": "alice",
            "password": PASSWORD,
        },
    )
    assert signed.status_code == 303, signed.text
    assert signed.headers["location"] == f"/device?user_code={user_code}"


def enter_code(browser: httpx.Client, typed: str) -> httpx.Response:
    """Type ``typed`` into the code form of /device and submit it."""
    form = browser.get("/device")
    assert form.status_code == 200, form.text
    fields = hidden_inputs(form.text)
    return browser.post(
        "/device", data={"request": fields["request"], "csrf": fields["csrf"], "user_code": typed}
    )


def decide(world: World, user_code: str, decision: str = "allow") -> httpx.Response:
    """Sign in at /device, confirm the code shown and allow (or deny) the device."""
    with world.browser() as browser:
        sign_in_at_device(browser, user_code)
        page = browser.get(f"/device?user_code={user_code}")
        assert page.status_code == 200, page.text
        assert f'value="{user_code}"' in page.text
        confirm = enter_code(browser, user_code)
        assert confirm.status_code == 200, confirm.text
        assert "TV app" in confirm.text and "offline_access" in confirm.text
        fields = hidden_inputs(confirm.text)
        return browser.post(
            "/device/decision",
            data={"request": fields["request"], "csrf": fields["csrf"], "decision": decision},
        )


@pytest.fixture
def frozen(world: World) -> World:
    """The world with its clock stopped: only ``advance`` moves it."""
    world.clock.freeze()
    return world


DEVICE_SCOPE = "openid profile offline_access"


def device_events(world: World) -> list[tuple[str, str, str, str | None, str, str]]:
    """The verification page's decisions in the audit trail: action, outcome, actor,
    subject, client and scope."""
    return [
        (r.action, r.outcome, r.actor, r.subject, r.detail["client"], r.detail["scope"])
        for r in audit(world.server)
        if r.action in ("device.approve", "device.deny")
    ]


def test_device_authorization_answers_the_codes_and_keeps_only_hashes(frozen: World) -> None:
    world = frozen
    client_id = device_client(world)
    answer = start(world, client_id)
    assert answer.status_code == 200, answer.text
    assert answer.headers["cache-control"] == "no-store"
    body = answer.json()
    assert set(body) == {
        "device_code",
        "user_code",
        "verification_uri",
        "verification_uri_complete",
        "expires_in",
        "interval",
    }
    assert USER_CODE.fullmatch(body["user_code"])
    assert body["verification_uri"] == f"{world.url}/device"
    assert body["verification_uri_complete"] == f"{world.url}/device?user_code={body['user_code']}"
    assert body["expires_in"] == 600
    assert body["interval"] == 5
    assert len(body["device_code"]) >= 43 and not body["device_code"].startswith("-")

    normalised = normalise_user_code(body["user_code"].lower().replace("-", " "))
    assert normalised == body["user_code"].replace("-", "")

    async def stored(store: Store) -> DeviceCodeRecord | None:
        return await store.find_device_code(user_code_hash(normalised or ""), world.clock())

    record = with_store(world.server.settings.database_url, stored)
    assert record is not None
    assert record.device_code_hash == device_code_hash(body["device_code"])
    assert body["device_code"].encode() not in repr(record).encode()
    assert record.scope == ("openid", "profile", "offline_access")


def test_approved_device_gets_tokens_once(frozen: World) -> None:
    world = frozen
    client_id = device_client(world)
    codes = started(world, client_id)
    assert error_of(poll(world, client_id, codes["device_code"])) == "authorization_pending"

    done = decide(world, codes["user_code"].lower().replace("-", ""))
    assert done.status_code == 200, done.text
    assert "Device connected" in done.text
    decided = ("device.approve", "success", "alice", world.user_id, client_id, DEVICE_SCOPE)
    assert device_events(world) == [decided]

    world.clock.advance(6)
    tokens = poll(world, client_id, codes["device_code"])
    assert tokens.status_code == 200, tokens.text
    body = tokens.json()
    assert body["token_type"] == "Bearer"
    assert body["scope"] == "openid profile offline_access"
    assert body["refresh_token"]
    _, id_claims = verify_jwt(world.url, body["id_token"])
    assert id_claims["sub"] == world.user_id
    assert id_claims["aud"] == client_id
    _, access = verify_jwt(world.url, body["access_token"])
    assert access["sub"] == world.user_id and access["client_id"] == client_id

    world.clock.advance(6)
    again = poll(world, client_id, codes["device_code"])
    assert error_of(again) == "invalid_grant"

    refreshed = httpx.post(
        f"{world.url}/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": body["refresh_token"],
            "client_id": client_id,
        },
        timeout=30,
    )
    assert refreshed.status_code == 200, refreshed.text


def test_polling_too_fast_slows_the_device_down(frozen: World) -> None:
    """Each poll sooner than the interval is slow_down and adds 5 s to it (RFC 8628 3.5)."""
    world = frozen
    client_id = device_client(world)
    device_code = started(world, client_id)["device_code"]
    assert error_of(poll(world, client_id, device_code)) == "authorization_pending"
    assert error_of(poll(world, client_id, device_code)) == "slow_down"  # interval now 10
    world.clock.advance(6)
    assert error_of(poll(world, client_id, device_code)) == "slow_down"  # interval now 15
    world.clock.advance(14)
    assert error_of(poll(world, client_id, device_code)) == "slow_down"  # interval now 20
    world.clock.advance(20)
    assert error_of(poll(world, client_id, device_code)) == "authorization_pending"


def test_expired_device_code_is_expired_token(frozen: World) -> None:
    world = frozen
    client_id = device_client(world)
    codes = started(world, client_id)
    world.clock.advance(601)
    assert error_of(poll(world, client_id, codes["device_code"])) == "expired_token"
    with world.browser() as browser:
        sign_in_at_device(browser, codes["user_code"])
        refused = enter_code(browser, codes["user_code"])
    assert refused.status_code == 400
    assert WRONG_CODE in refused.text


def test_denied_device_is_access_denied(frozen: World) -> None:
    world = frozen
    client_id = device_client(world)
    codes = started(world, client_id)
    done = decide(world, codes["user_code"], "deny")
    assert done.status_code == 200, done.text
    assert "Device not connected" in done.text
    decided = ("device.deny", "success", "alice", world.user_id, client_id, DEVICE_SCOPE)
    assert device_events(world) == [decided]
    world.clock.advance(6)
    assert error_of(poll(world, client_id, codes["device_code"])) == "access_denied"


def test_unknown_or_foreign_device_codes_are_invalid_grant(frozen: World) -> None:
    world = frozen
    client_id = device_client(world)
    other = device_client(world, name="other")
    device_code = started(world, client_id)["device_code"]
    assert error_of(poll(world, client_id, "not-a-device-code")) == "invalid_grant"
    assert error_of(poll(world, other, device_code)) == "invalid_grant"
    assert error_of(poll(world, client_id, "x" * 300)) == "invalid_grant"
    missing = httpx.post(
        f"{world.url}/token",
        data={"grant_type": DEVICE_CODE_GRANT, "client_id": client_id},
        timeout=30,
    )
    assert error_of(missing) == "invalid_request"


def test_wrong_user_codes_are_counted_and_throttled(frozen: World) -> None:
    """Wrong codes are refused plainly and counted per session: after the allowance even
    the right code waits (429 with Retry-After)."""
    world = frozen
    client_id = device_client(world)
    codes = started(world, client_id)
    with world.browser() as browser:
        sign_in_at_device(browser, codes["user_code"])
        allowance = world.server.settings.login_max_failures
        for guess in ["BBBB-BBBB", "not a code", *["CCCC-CCCC"] * (allowance - 2)]:
            refused = enter_code(browser, guess)
            assert refused.status_code == 400, refused.text
            assert WRONG_CODE in refused.text
        throttled = enter_code(browser, codes["user_code"])
        assert throttled.status_code == 429, throttled.text
        rows = {row.action: row for row in audit(world.server)}
        guessed = rows["device.user_code"]
        assert (guessed.outcome, guessed.count, guessed.subject) == (
            "failure",
            allowance,
            world.user_id,
        )
        refused = rows["signin.throttled"]
        assert (refused.detail["step"], refused.detail["purpose"]) == ("user_code", "device")
        assert int(throttled.headers["retry-after"]) >= 1
        assert "Try again in" in throttled.text
        world.clock.advance(int(throttled.headers["retry-after"]) + 1)
        confirm = enter_code(browser, codes["user_code"])
        assert confirm.status_code == 200, confirm.text
        assert "TV app" in confirm.text


def test_client_without_the_grant_is_unauthorized(frozen: World) -> None:
    world = frozen
    client_id = device_client(world, grant_types=["authorization_code"], redirect_uris=[WEB_CB])
    refused = start(world, client_id)
    assert refused.status_code == 400
    assert refused.json()["error"] == "unauthorized_client"
    at_token = poll(world, client_id, "whatever")
    assert error_of(at_token) == "unauthorized_client"


def test_confidential_client_authenticates_and_scope_is_checked(frozen: World) -> None:
    world = frozen
    client_id, secret = register_client(
        world.server.settings, "console", grant_types=[DEVICE_CODE_GRANT], scope="files"
    )
    url = f"{world.url}/device_authorization"
    good = httpx.post(url, data={"scope": "openid files"}, auth=(client_id, secret), timeout=30)
    assert good.status_code == 200, good.text
    bad = httpx.post(url, data={"scope": "openid"}, auth=(client_id, "wrong"), timeout=30)
    assert bad.status_code == 401
    assert bad.json()["error"] == "invalid_client"
    anonymous = httpx.post(url, data={"client_id": client_id}, timeout=30)
    assert anonymous.status_code == 401
    scope = httpx.post(url, data={"scope": "openid other"}, auth=(client_id, secret), timeout=30)
    assert scope.status_code == 400
    assert scope.json()["error"] == "invalid_scope"


def test_decision_form_needs_its_csrf_token(frozen: World) -> None:
    world = frozen
    client_id = device_client(world)
    codes = started(world, client_id)
    with world.browser() as browser:
        sign_in_at_device(browser, codes["user_code"])
        confirm = enter_code(browser, codes["user_code"])
        fields = hidden_inputs(confirm.text)
        forged = browser.post(
            "/device/decision",
            data={"request": fields["request"], "csrf": "forged", "decision": "allow"},
        )
        assert forged.status_code == 403
    world.clock.advance(6)
    assert error_of(poll(world, client_id, codes["device_code"])) == "authorization_pending"


def test_cli_registers_and_changes_the_device_grant(migrated: Idp) -> None:
    """``--grant-type urn:ietf:params:oauth:grant-type:device_code`` at create and update;
    not with the admin scope, which is for machine clients only."""
    created = migrated(
        "clients", "create", "--name", "cli tool", "--public", "--json",
        "--grant-type", DEVICE_CODE_GRANT, "--grant-type", "refresh_token",
    ).json()  # fmt: skip
    assert created["grant_types"] == [DEVICE_CODE_GRANT, "refresh_token"]
    assert created["token_endpoint_auth_method"] == "none"
    other = migrated("clients", "create", "--name", "console", "--json").json()
    updated = migrated(
        "clients", "update", other["client_id"], "--grant-type", DEVICE_CODE_GRANT, "--json"
    ).json()
    assert updated["grant_types"] == [DEVICE_CODE_GRANT]
    refused = migrated(
        "clients", "create", "--name", "bad", "--scope", "idp:admin",
        "--grant-type", DEVICE_CODE_GRANT,
    )  # fmt: skip
    assert refused.returncode != 0


def test_client_requiring_a_second_factor_needs_one_in_the_session(frozen: World) -> None:
    """A --require-mfa client is not allowed from a password-only sign-in; the code stays
    pending."""
    world = frozen
    client_id = device_client(world, require_mfa=True)
    codes = started(world, client_id)
    with world.browser() as browser:
        sign_in_at_device(browser, codes["user_code"])
        refused = enter_code(browser, codes["user_code"])
    assert refused.status_code == 400
    assert "needs two-step verification" in refused.text
    world.clock.advance(6)
    assert error_of(poll(world, client_id, codes["device_code"])) == "authorization_pending"


def test_a_code_typed_with_spaces_and_lower_case_comes_back_after_sign_in(frozen: World) -> None:
    world = frozen
    client_id = device_client(world)
    codes = started(world, client_id)
    typed = codes["user_code"].lower().replace("-", " ")
    with world.browser() as browser:
        first = browser.get("/device", params={"user_code": typed})
        login = browser.get(first.headers["location"])
        fields = hidden_inputs(login.text)
        signed = browser.post(
            "/account/login",
            data={**fields, "username": "alice", "password": PASSWORD},
        )
        assert signed.status_code == 303, signed.text
        back = browser.get(signed.headers["location"])
        assert back.status_code == 200, back.text
        assert f'value="{typed}"' in back.text
        confirm = browser.post("/device", data=hidden_inputs(back.text))
        assert confirm.status_code == 200, confirm.text
        assert "TV app" in confirm.text


def test_device_pages_speak_german(frozen: World) -> None:
    world = frozen
    client_id = device_client(world)
    codes = started(world, client_id)
    with world.browser() as browser:
        browser.headers["accept-language"] = "de"
        sign_in_at_device(browser, codes["user_code"])
        page = browser.get("/device")
        assert page.headers["content-language"] == "de"
        assert "Gerät verbinden" in page.text
        wrong = enter_code(browser, "BBBB-BBBB")
        assert "Dieser Code ist ungültig." in wrong.text
        confirm = enter_code(browser, codes["user_code"])
        assert "Dieses Gerät zulassen?" in confirm.text
        done = browser.post(
            "/device/decision", data={**hidden_inputs(confirm.text), "decision": "deny"}
        )
        assert "Gerät nicht verbunden" in done.text
