"""Security events over a real server on both stores: each sign-in step, throttled attempt,
lock, unlock, replayed code or refresh token, consent and key failure is an audit row (actor,
subject, client, address, outcome) and a count in ``idp_security_events_total``; a flood of
failures from one address adds one row a minute, not one per attempt."""

from __future__ import annotations

import json
from dataclasses import replace

import httpx
from prometheus_client.parser import text_string_to_metric_families

from idp.admin.context import AdminContext
from idp.admin.keys import rewrap_keys
from idp.config import Settings, new_key_encryption_key
from idp.store.base import AuditEntry
from tests.support.admin_api import bearer, get_token, register_admin
from tests.support.factors import (
    code_now,
    enrol_totp,
    is_second_factor_page,
    submit_code,
    wrong_code,
)
from tests.support.keys import key_of
from tests.support.processes import wait_for
from tests.support.server import register_client, with_store
from tests.support.sso import (
    CONSENT_CB,
    PASSWORD,
    AuthorizeParams,
    World,
    hidden_inputs,
    query_of,
    redeem,
    sign_in,
    submit_login,
)

ADDRESS = "127.0.0.1"
APP_CB = "http://127.0.0.1:8765/notes/cb"


def counted(world: World, action: str, outcome: str) -> float:
    """The server's ``idp_security_events_total`` for one action and outcome, from /metrics."""
    text = httpx.get(f"{world.url}/metrics", timeout=10).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "idp_security_events_total" and sample.labels == {
                "action": action,
                "outcome": outcome,
            }:
                return sample.value
    return 0.0


def rows(world: World, action: str) -> list[AuditEntry]:
    """The audit rows of one action (or family, ``signin.*``), oldest first."""
    url = world.server.settings.database_url
    found: list[AuditEntry] = with_store(url, lambda s: s.list_audit(action=action))
    return found


def every_row_text(world: World) -> str:
    url = world.server.settings.database_url
    entries = with_store(url, lambda s: s.list_audit(limit=100_000))
    return json.dumps([[e.actor, e.target, e.subject, dict(e.detail)] for e in entries])


def login_page(browser: httpx.Client, request: AuthorizeParams) -> httpx.Response:
    page = browser.get(request.url())
    assert page.status_code == 200 and 'name="password"' in page.text
    return page


def test_password_sign_in_success_and_failure(world: World) -> None:
    world.clock.freeze()
    request = world.request()
    with world.browser() as browser:
        page = login_page(browser, request)
        wrong = submit_login(browser, page, "alice", "not the password")
        assert wrong.status_code == 200 and "Incorrect" in wrong.text
        unknown = submit_login(browser, wrong, "nobody-at-all", "guess")
        assert unknown.status_code == 200
    with world.browser() as browser:
        sign_in(browser, request)

    [success] = [e for e in rows(world, "signin.password") if e.outcome == "success"]
    assert (success.actor, success.subject, success.target) == (
        "alice",
        world.user_id,
        world.user_id,
    )
    assert success.detail == {"client": world.web, "address": ADDRESS, "purpose": "authorize"}
    # Both failures from one address in one minute share one counted row.
    [failure] = [e for e in rows(world, "signin.password") if e.outcome == "failure"]
    assert failure.count == 2 and failure.subject == world.user_id and failure.actor == "alice"
    assert failure.detail["client"] == world.web and failure.detail["address"] == ADDRESS
    assert counted(world, "signin.password", "success") == 1
    assert counted(world, "signin.password", "failure") == 2
    text = every_row_text(world)
    assert "not the password" not in text and "guess" not in text and PASSWORD not in text
    assert "nobody-at-all" not in text  # a name that is no account's may be a password


def test_a_flood_of_failures_from_one_address_adds_a_row_a_minute(world: World) -> None:
    world.clock.freeze()
    attempts = 40
    with world.browser() as browser:
        page = login_page(browser, world.request())
        statuses = []
        for _ in range(attempts):
            page = submit_login(browser, page, "alice", "wrong")
            statuses.append(page.status_code)
    allowance = world.server.settings.login_max_failures
    assert statuses.count(200) == allowance and statuses.count(429) == attempts - allowance
    flood = rows(world, "signin.*")
    assert len(flood) == 2  # one failure row and one throttled row, however many attempts
    by_action = {e.action: e for e in flood}
    assert by_action["signin.password"].count == allowance
    throttled = by_action["signin.throttled"]
    assert throttled.count == attempts - allowance and throttled.outcome == "failure"
    assert throttled.subject == world.user_id and throttled.detail["step"] == "password"
    assert throttled.detail["address"] == ADDRESS and throttled.detail["client"] == world.web
    assert counted(world, "signin.throttled", "failure") == attempts - allowance

    # The next minute opens a new bucket: one row more.
    world.clock.advance(61)
    with world.browser() as browser:
        submit_login(browser, login_page(browser, world.request()), "alice", "wrong")
    assert len(rows(world, "signin.*")) == 3


def test_a_lock_and_the_admin_unlock(world: World) -> None:
    world.clock.freeze()
    with world.browser() as browser:
        page = login_page(browser, world.request())
        for _ in range(2 * world.server.settings.login_max_failures):
            page = submit_login(browser, page, "alice", "wrong")
            assert page.status_code == 200, page.text
            world.clock.advance(61)  # past each pause
        locked = submit_login(browser, page, "alice", PASSWORD)
        assert locked.status_code == 429
    [lock] = rows(world, "account.locked")
    assert (lock.actor, lock.subject, lock.outcome) == ("alice", world.user_id, "failure")
    assert lock.detail["locked"] == ["account_and_address"]
    assert lock.detail["address"] == ADDRESS and lock.detail["client"] == world.web
    assert counted(world, "account.locked", "failure") == 1

    with httpx.Client(base_url=world.url, timeout=30) as http:
        token = get_token(http, *register_admin(world.server))
        done = http.post(f"/admin/users/{world.user_id}/unlock", headers=bearer(token))
        assert done.status_code == 200, done.text
        assert done.json()["cleared"] is True
        [unlock] = rows(world, "user.unlock")
        assert unlock.target == world.user_id and unlock.actor.startswith("admin:")
        assert counted(world, "user.unlock", "success") == 1
        filtered = http.get("/admin/audit?action=account.locked", headers=bearer(token)).json()
        assert [e["action"] for e in filtered["entries"]] == ["account.locked"]
        family = http.get("/admin/audit?action=signin.*", headers=bearer(token)).json()
        assert {e["action"] for e in family["entries"]} == {"signin.password", "signin.throttled"}
        bad = http.get("/admin/audit?action=DROP TABLE", headers=bearer(token))
        assert bad.status_code == 400 and bad.json()["error"] == "invalid_request"
    with world.browser() as browser:
        sign_in(browser, world.request())


def test_second_factor_success_failure_and_an_unopenable_secret(world: World) -> None:
    world.clock.freeze()
    secret, _ = enrol_totp(world.server.settings, world.user_id, world.clock)
    with world.browser() as browser:
        asked = submit_login(browser, login_page(browser, world.request()), "alice", PASSWORD)
        assert is_second_factor_page(asked)
        wrong = submit_code(browser, asked, wrong_code(secret, world.clock))
        assert wrong.status_code == 200
        done = submit_code(browser, wrong, code_now(secret, world.clock))
        assert done.status_code == 303, done.text
    verified = {e.outcome: e for e in rows(world, "mfa.verify")}
    assert verified["success"].detail["method"] == "totp"
    for entry in verified.values():
        assert entry.subject == world.user_id and entry.detail["client"] == world.web
        assert entry.detail["address"] == ADDRESS
    assert counted(world, "mfa.verify", "success") == 1
    assert counted(world, "mfa.verify", "failure") == 1

    # A secret sealed under another key-encryption key cannot be opened: reported, refused.
    other = replace(world.server.settings, key_encryption_key=key_of(new_key_encryption_key()))
    world.clock.advance(90)
    foreign, _ = enrol_totp_again(world, other)
    with world.browser() as browser:
        asked = submit_login(browser, login_page(browser, world.request()), "alice", PASSWORD)
        refused = submit_code(browser, asked, code_now(foreign, world.clock))
        assert refused.status_code == 200 and "not right" in refused.text
    [unopened] = rows(world, "key.decrypt")
    assert unopened.target == world.user_id and unopened.detail["kind"] == "totp_secret"
    assert unopened.outcome == "failure" and unopened.actor == "system"
    assert counted(world, "key.decrypt", "failure") == 1


def enrol_totp_again(world: World, settings: Settings) -> tuple[str, list[str]]:
    """Remove alice's TOTP and enrol a new one sealed under ``settings``' key."""
    url = world.server.settings.database_url
    with_store(url, lambda s: s.delete_second_factors(world.user_id, None))
    return enrol_totp(settings, world.user_id, world.clock)


def test_authorization_code_replay(world: World) -> None:
    request = world.request()
    with world.browser() as browser:
        code = sign_in(browser, request)["code"]
    assert redeem(world.url, request, code).status_code == 200
    again = redeem(world.url, request, code)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
    [replay] = rows(world, "authorization_code.replay")
    assert (replay.subject, replay.actor, replay.outcome) == (world.user_id, world.web, "failure")
    assert replay.detail["client"] == world.web and replay.detail["address"] == ADDRESS
    assert code not in every_row_text(world)
    assert counted(world, "authorization_code.replay", "failure") == 1


def test_refresh_token_reuse_revokes_the_family_and_is_reported(world: World) -> None:
    client_id, _ = register_client(
        world.server.settings,
        "notes",
        public=True,
        redirect_uris=[APP_CB],
        grant_types=["authorization_code", "refresh_token"],
    )
    request = AuthorizeParams(client_id, APP_CB)
    with world.browser() as browser:
        code = sign_in(browser, request)["code"]
    first = redeem(world.url, request, code).json()["refresh_token"]
    form = {"grant_type": "refresh_token", "client_id": client_id}
    rotated = httpx.post(f"{world.url}/token", data={**form, "refresh_token": first})
    assert rotated.status_code == 200, rotated.text
    world.clock.advance(world.server.settings.refresh_reuse_grace + 1)  # past the grace
    reused = httpx.post(f"{world.url}/token", data={**form, "refresh_token": first})
    assert reused.status_code == 400 and reused.json()["error"] == "invalid_grant"
    successor = rotated.json()["refresh_token"]
    revoked = httpx.post(f"{world.url}/token", data={**form, "refresh_token": successor})
    assert revoked.status_code == 400  # the whole family went with the reuse
    [reuse] = rows(world, "refresh_token.reuse")
    assert (reuse.subject, reuse.actor, reuse.outcome) == (world.user_id, client_id, "failure")
    assert reuse.detail["client"] == client_id and reuse.detail["address"] == ADDRESS
    assert first not in every_row_text(world) and successor not in every_row_text(world)
    assert counted(world, "refresh_token.reuse", "failure") == 1


def test_consent_granted_and_revoked_on_the_account_page(world: World) -> None:
    request = AuthorizeParams(world.consenting, CONSENT_CB)
    with world.browser() as browser, world.browser() as owner:
        page = login_page(browser, request)
        asked = submit_login(browser, page, "alice", PASSWORD)
        fields = hidden_inputs(asked.text)
        allowed = browser.post(
            "/consent",
            data={"request": fields["request"], "csrf": fields["csrf"], "decision": "allow"},
        )
        assert allowed.status_code == 303 and "code" in query_of(allowed.headers["location"])

        account = owner.get("/account/login")
        form = hidden_inputs(account.text)
        signed = owner.post(
            "/account/login",
            data={**{k: form[k] for k in ("request", "csrf")}, "username": "alice",
                  "password": PASSWORD},
        )  # fmt: skip
        assert signed.status_code == 303
        page = owner.get("/account")
        form = hidden_inputs(page.text)
        done = owner.post(
            "/account/apps/revoke",
            data={"request": form["request"], "csrf": form["csrf"], "client_id": world.consenting},
        )
        assert done.headers["location"] == "/account?done=app-revoked"

    [granted] = rows(world, "consent.grant")
    assert (granted.actor, granted.subject, granted.outcome) == ("alice", world.user_id, "success")
    assert granted.detail["client"] == world.consenting and granted.detail["address"] == ADDRESS
    assert granted.detail["scope"] == "openid profile email"
    [revoked] = rows(world, "consent.revoke")
    assert (revoked.target, revoked.subject) == (world.consenting, world.user_id)
    assert revoked.detail == {"client": world.consenting, "address": ADDRESS, "by": "user"}
    assert counted(world, "consent.grant", "success") == 1
    assert counted(world, "consent.revoke", "success") == 1
    # The account page's own sign-in is reported too, without a client.
    account_sign_ins = [
        e for e in rows(world, "signin.password") if e.detail["purpose"] == "account"
    ]
    assert account_sign_ins and "client" not in account_sign_ins[0].detail


def test_a_signing_key_the_key_encryption_key_cannot_open(world: World) -> None:
    """After another process rewraps the ring under a new key, this one cannot open the
    store's keys: reported once a minute at most, counted at every reload."""
    old = world.server.settings
    new = key_of(new_key_encryption_key())
    with_store(old.database_url, lambda store: rewrap_keys(AdminContext(store, old), new))

    def reported() -> list[AuditEntry] | None:
        return rows(world, "key.decrypt") or None

    entries = wait_for(reported, 30.0, 0.1, "no key.decrypt row")
    assert len(entries) <= 2  # one a minute, however often the watcher retries
    entry = entries[0]
    assert entry.outcome == "failure" and entry.actor == "system"
    assert entry.detail["kind"] == "signing_key" and entry.target
    assert counted(world, "key.decrypt", "failure") >= 1
