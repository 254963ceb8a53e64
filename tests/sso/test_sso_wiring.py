"""The sign-on flow together with refresh tokens, login throttling and back-channel logout.

Each piece has its own tests; these check that they are connected: a code redeemed by a
client with the refresh_token grant yields a refresh token, a replayed code revokes it and
the access tokens of its grant, logout revokes the session's tokens, access tokens included
(not offline ones), and tells back-channel clients, failed logins pause the account and lock
the guessing address out of it (parallel guesses included), and disabling a user revokes
everything. Over a real server on both stores.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import httpx
import pytest

from idp.config import Settings
from tests.support.backchannel import Receiver
from tests.support.clocks import FakeClock
from tests.support.processes import idp_json
from tests.support.server import LiveServer, make_env, register_client, start_server
from tests.support.sso import (
    BYE,
    PASSWORD,
    WEB_CB,
    AuthorizeParams,
    World,
    add_user,
    query_of,
    redeem,
    sign_in,
    submit_login,
    verify_jwt,
)

RP_CB = "http://127.0.0.1:8765/rp/cb"


@pytest.fixture
def env(database_url: str, port: int) -> dict[str, str]:
    """Back-channel receivers here listen on 127.0.0.1: allowed for development only."""
    return make_env(database_url, port, IDP_ALLOW_PRIVATE_BACKCHANNEL="1")


@pytest.fixture
def receiver(world: World) -> Iterator[Receiver]:
    started = Receiver(world.url, client_id="").start()
    yield started
    started.stop()


def register_rp(settings: Settings, backchannel_logout_uri: str | None = None) -> str:
    """A public client with the refresh_token grant (and optionally back-channel logout)."""
    client_id, _ = register_client(
        settings,
        "rp",
        public=True,
        redirect_uris=[RP_CB],
        post_logout_redirect_uris=[BYE],
        grant_types=["authorization_code", "refresh_token"],
        backchannel_logout_uri=backchannel_logout_uri,
    )
    return client_id


def userinfo(world: World, access_token: str) -> int:
    """The status /userinfo answers for the token (200, or 401 invalid_token)."""
    response = httpx.get(
        f"{world.url}/userinfo", headers={"Authorization": f"Bearer {access_token}"}, timeout=30
    )
    if response.status_code == 401:
        assert 'error="invalid_token"' in response.headers["www-authenticate"]
    return response.status_code


def refresh(world: World, client_id: str, token: str) -> httpx.Response:
    return httpx.post(
        f"{world.url}/token",
        data={"grant_type": "refresh_token", "refresh_token": token, "client_id": client_id},
        timeout=30,
    )


def test_code_flow_issues_refresh_tokens_and_a_replayed_code_revokes_them(
    world: World, settings: Settings
) -> None:
    rp = register_rp(settings)
    with world.browser() as browser:
        request = AuthorizeParams(rp, RP_CB)
        code = sign_in(browser, request)["code"]
    with world.browser() as other:
        plain = world.request()
        plain_tokens = redeem(world.url, plain, sign_in(other, plain)["code"]).json()
    assert "refresh_token" not in plain_tokens  # that client lacks the grant
    tokens = redeem(world.url, request, code).json()
    assert tokens["refresh_token"] and tokens["id_token"]
    rotated = refresh(world, rp, tokens["refresh_token"])
    assert rotated.status_code == 200, rotated.text
    successor = rotated.json()["refresh_token"]
    assert successor != tokens["refresh_token"]

    assert userinfo(world, tokens["access_token"]) == 200

    replay = redeem(world.url, request, code)
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
    dead = refresh(world, rp, successor)
    assert dead.status_code == 400 and dead.json()["error"] == "invalid_grant"
    # The grant ended: the access tokens of the first redemption and of the refresh too.
    assert userinfo(world, tokens["access_token"]) == 401
    assert userinfo(world, rotated.json()["access_token"]) == 401
    assert userinfo(world, plain_tokens["access_token"]) == 200


def test_a_code_whose_session_ended_before_redemption_is_refused(
    world: World, settings: Settings
) -> None:
    """Signing in again in the browser ends the first session and its session-bound grants."""
    rp = register_rp(settings)
    with world.browser() as browser:
        bound = AuthorizeParams(rp, RP_CB)
        bound_code = sign_in(browser, bound)["code"]
        offline = AuthorizeParams(rp, RP_CB, scope="openid offline_access")
        offline_code = query_of(browser.get(offline.url()).headers["location"])["code"]
        again = world.request(prompt="login")
        assert sign_in(browser, again)["code"]
    refused = redeem(world.url, bound, bound_code)
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"
    kept = redeem(world.url, offline, offline_code)
    assert kept.status_code == 200, kept.text
    assert userinfo(world, kept.json()["access_token"]) == 200


def test_logout_revokes_session_tokens_keeps_offline_ones_and_tells_the_client(
    world: World, settings: Settings, receiver: Receiver
) -> None:
    rp = register_rp(settings, receiver.url)
    receiver.client_id = rp
    with world.browser() as browser:
        offline = AuthorizeParams(rp, RP_CB, scope="openid offline_access")
        offline_tokens = redeem(world.url, offline, sign_in(browser, offline)["code"]).json()
        online = AuthorizeParams(rp, RP_CB, scope="openid", extra={"prompt": "none"})
        answer = browser.get(online.url())
        online_tokens = redeem(world.url, online, query_of(answer.headers["location"])["code"])
        online_tokens = online_tokens.json()
        sid = verify_jwt(world.url, online_tokens["id_token"])[1]["sid"]
        done = browser.get(
            "/logout",
            params={"id_token_hint": online_tokens["id_token"], "post_logout_redirect_uri": BYE},
        )
        assert done.status_code == 303

    gone = refresh(world, rp, online_tokens["refresh_token"])
    assert gone.status_code == 400 and gone.json()["error"] == "invalid_grant"
    assert userinfo(world, online_tokens["access_token"]) == 401  # bound to the session
    assert userinfo(world, offline_tokens["access_token"]) == 200  # offline_access outlives it
    kept = refresh(world, rp, offline_tokens["refresh_token"])
    assert kept.status_code == 200, kept.text
    assert userinfo(world, kept.json()["access_token"]) == 200

    deadline = time.monotonic() + 15
    while not receiver.accepted and time.monotonic() < deadline:
        time.sleep(0.1)
    assert receiver.rejected == []
    assert len(receiver.accepted) == 1
    claims = receiver.accepted[0]
    assert (claims["sid"], claims["sub"], claims["aud"]) == (sid, world.user_id, rp)


def test_failed_logins_pause_then_lock_until_unlocked(
    world: World, env: dict[str, str], tmp_path: Path
) -> None:
    request = world.request()
    world.clock.freeze()  # a pause of 1 s must not run out between two requests
    with world.browser() as browser:
        page = browser.get(request.url())
        for failure in range(1, 11):
            answer = submit_login(browser, page, "alice", "wrong password")
            assert answer.status_code == 200, (failure, answer.status_code)
            assert "Incorrect username or password." in answer.text
            if failure < 5:
                # Up to N - 1 failures cost nothing (a success now would clear the count).
                continue
            paused = submit_login(browser, page, "alice", PASSWORD)
            assert paused.status_code == 429, (failure, paused.text)
            assert "Too many failed sign-ins" in paused.text
            assert int(paused.headers["retry-after"]) >= 1
            assert "set-cookie" not in paused.headers or "idp_session" not in str(
                paused.headers.get_list("set-cookie")
            )
            world.clock.advance(61)  # past the longest pause, well inside the window

        locked = submit_login(browser, page, "alice", PASSWORD)
        assert locked.status_code == 429
        assert "minutes" in locked.text
        world.clock.advance(61)
        assert submit_login(browser, page, "alice", PASSWORD).status_code == 429

        unlocked = idp_json(["users", "unlock", "alice"], env, tmp_path)
        assert unlocked["cleared"] is True
        done = submit_login(browser, page, "alice", PASSWORD)
        assert done.status_code == 303, done.text
        assert "code" in query_of(done.headers["location"])


def test_disabling_a_user_revokes_even_offline_refresh_tokens(
    world: World, settings: Settings, env: dict[str, str], tmp_path: Path
) -> None:
    rp = register_rp(settings)
    with world.browser() as browser:
        offline = AuthorizeParams(rp, RP_CB, scope="openid offline_access")
        tokens = redeem(world.url, offline, sign_in(browser, offline)["code"]).json()
    assert userinfo(world, tokens["access_token"]) == 200
    done = idp_json(["users", "disable", "alice"], env, tmp_path)
    assert done["sessions_ended"] == 1
    refused = refresh(world, rp, tokens["refresh_token"])
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"
    assert userinfo(world, tokens["access_token"]) == 401


def test_users_update_disable_ends_access_like_users_disable(
    world: World, settings: Settings, env: dict[str, str], tmp_path: Path
) -> None:
    """Sessions and tokens end for good: enabling the user again revives none of them."""
    rp = register_rp(settings)
    with world.browser() as browser:
        offline = AuthorizeParams(rp, RP_CB, scope="openid offline_access")
        tokens = redeem(world.url, offline, sign_in(browser, offline)["code"]).json()
        done = idp_json(["users", "update", world.user_id, "--disable"], env, tmp_path)
        assert done["disabled"] is True
        again = idp_json(["users", "update", world.user_id, "--enable"], env, tmp_path)
        assert again["disabled"] is False
        silent = browser.get(AuthorizeParams(rp, RP_CB, extra={"prompt": "none"}).url())
        assert query_of(silent.headers["location"])["error"] == "login_required"
    refused = refresh(world, rp, tokens["refresh_token"])
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"
    assert userinfo(world, tokens["access_token"]) == 401


# -- guessing in parallel, and the owner elsewhere -------------------------------------------

ATTACKER = "203.0.113.7"
OWNER = "198.51.100.20"


@dataclass
class StillWorld:
    """A provider whose clock stands still until moved, behind a trusted proxy at 127.0.0.1."""

    server: LiveServer
    clock: FakeClock
    request: AuthorizeParams

    def browser(self) -> httpx.Client:
        return httpx.Client(base_url=self.server.url, follow_redirects=False, timeout=60)


@pytest.fixture
def still(settings: Settings, port: int) -> Iterator[StillWorld]:
    proxied = replace(
        settings, login_max_failures=5, trusted_proxies=(ipaddress.ip_network("127.0.0.1/32"),)
    )
    clock = FakeClock(time.time())
    server = start_server(proxied, port, clock)
    try:
        add_user(proxied)
        web, _ = register_client(
            proxied, "web", public=True, redirect_uris=[WEB_CB], grant_types=["authorization_code"]
        )
        yield StillWorld(server, clock, AuthorizeParams(web, WEB_CB))
    finally:
        server.stop()


def login_from(
    browser: httpx.Client, page: httpx.Response, address: str, password: str
) -> httpx.Response:
    """Post the login form for alice as the client ``address`` (through the trusted proxy)."""
    browser.headers["X-Forwarded-For"] = address
    try:
        return submit_login(browser, page, "alice", password)
    finally:
        del browser.headers["X-Forwarded-For"]


def guess_from(
    page: httpx.Response, cookies: httpx.Cookies, world: StillWorld, address: str, n: int
) -> httpx.Response:
    """One guess from a browser of its own that holds the cookies ``page`` set."""
    with world.browser() as browser:
        browser.cookies.update(cookies)
        return login_from(browser, page, address, f"wrong guess {n}")


def test_twenty_parallel_guesses_reach_the_password_check_at_most_five_times(
    still: StillWorld,
) -> None:
    with still.browser() as browser:
        page = browser.get(still.request.url())
        # Read once here: httpx fills Response.cookies lazily, which is not thread-safe.
        cookies = httpx.Cookies(page.cookies)
        with ThreadPoolExecutor(max_workers=20) as pool:
            answers = list(
                pool.map(lambda n: guess_from(page, cookies, still, ATTACKER, n), range(20))
            )
        refused = [a for a in answers if a.status_code == 429]
        checked = [a for a in answers if a.status_code == 200]
        assert len(refused) + len(checked) == 20, [a.status_code for a in answers]
        assert len(refused) >= 15, f"{len(checked)} guesses reached the password check"
        assert all(int(a.headers["retry-after"]) >= 1 for a in refused)
        assert all("Incorrect username or password." in a.text for a in checked)
        # The right password right after the burst, from the same address: refused too.
        right = login_from(browser, page, ATTACKER, PASSWORD)
        assert right.status_code == 429, right.text
        assert int(right.headers["retry-after"]) >= 1


def test_the_owner_elsewhere_waits_at_most_a_minute_while_the_guesser_stays_locked(
    still: StillWorld,
) -> None:
    with still.browser() as browser:
        page = browser.get(still.request.url())
        # The guesser goes on from one address, waiting out each pause, until it is locked.
        failures = 0
        while failures < 10:
            answer = login_from(browser, page, ATTACKER, f"wrong guess {failures}")
            if answer.status_code == 429:
                still.clock.advance(int(answer.headers["retry-after"]))
                continue
            assert answer.status_code == 200, answer.text
            failures += 1
        locked = login_from(browser, page, ATTACKER, PASSWORD)
        assert locked.status_code == 429 and int(locked.headers["retry-after"]) > 60
        # Then from fresh addresses, each after the account's pause, so that it is long.
        for n in range(3):
            still.clock.advance(60)
            answer = login_from(browser, page, f"203.0.113.{100 + n}", "wrong again")
            assert answer.status_code == 200, answer.text
        # The owner, from an address with no failures, waits the account's pause and no more.
        waiting = login_from(browser, page, OWNER, PASSWORD)
        assert waiting.status_code == 429, waiting.text
        assert 1 <= int(waiting.headers["retry-after"]) <= 60
        still.clock.advance(int(waiting.headers["retry-after"]))
        done = login_from(browser, page, OWNER, PASSWORD)
        assert done.status_code == 303, done.text
        assert "code" in query_of(done.headers["location"])
        # The guessing address is still locked out of the account, right password or not.
        assert login_from(browser, page, ATTACKER, PASSWORD).status_code == 429
