"""End to end: the examples in headless Chromium, with every part a real process, on both stores.

App A and app B (two origins: 127.0.0.1 on two ports), the notes API and ``idp serve`` are
started by ``examples.launch``, the code behind ``examples/run``. The browser signs in at
app A, is signed in at app B without a form (single sign-on), has app A call the API with
its access token, signs out at app A and finds app B signed out too (back-channel logout).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from joserfc import jwt
from joserfc.jwk import ECKey, Key
from playwright.sync_api import Page, sync_playwright

from examples.launch import Demo, Ports, running_demo
from examples.relying_party import (
    BACKCHANNEL_LOGOUT_EVENT,
    LocalSession,
    LocalSessions,
    LogoutTokenError,
    check_logout_claims,
)
from idp.config import new_key_encryption_key
from tests.support.browser import ARGS, CHROMIUM
from tests.support.processes import child_env, idp_json, migrate
from tests.support.server import free_port

BACKCHANNEL_TIMEOUT = 15.0
PROTECTED_RESOURCE = "/.well-known/oauth-protected-resource"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def demo(database_url: str, tmp_path: Path) -> Iterator[Demo]:
    ports = Ports(free_port(), free_port(), free_port(), free_port())
    with running_demo(tmp_path, ports, database_url) as running:
        yield running


def _poll_signed_out(page: Page, url: str) -> None:
    """Reload app B until it says it is signed out (the logout token travels in the background)."""
    deadline = time.monotonic() + BACKCHANNEL_TIMEOUT
    while True:
        page.goto(url)
        if page.locator("#status").count() == 1:
            return
        if time.monotonic() > deadline:
            raise AssertionError("app B still signed in after the back-channel logout")
        time.sleep(0.2)


def test_sign_in_sso_api_and_backchannel_logout(
    demo: Demo, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    assert CHROMIUM.exists(), "Debian's chromium package is missing: run scripts/test"
    idp_pages: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=ARGS
        )
        try:
            context = browser.new_context()
            context.set_default_timeout(15_000)
            page = context.new_page()
            # Every IdP answer to a navigation, as "status url": SSO means only redirects.
            page.on(
                "response",
                lambda answer: (
                    idp_pages.append(f"{answer.status} {answer.url}")
                    if answer.url.startswith(demo.idp_url)
                    and answer.request.is_navigation_request()
                    else None
                ),
            )
            try:
                # App A: not signed in, then through the IdP's login form.
                page.goto(demo.app_a_url + "/")
                assert page.inner_text("#status") == "Not signed in."
                page.click("#login")
                page.wait_for_url(f"{demo.idp_url}/authorize?**")
                assert page.title() == "Sign in"
                page.fill("input[name=username]", demo.username)
                page.fill("input[name=password]", demo.password)
                with page.expect_navigation(url=demo.app_a_url + "/"):
                    page.click("button[type=submit]")
                assert "Signed in as Demo User" in page.inner_text("#user")

                # App B: single sign-on, no form on the way.
                idp_pages.clear()
                page.goto(demo.app_b_url + "/")
                assert page.inner_text("#status") == "Not signed in."
                page.click("#login")
                page.wait_for_url(demo.app_b_url + "/")
                assert "Signed in as Demo User" in page.inner_text("#user")
                assert len(idp_pages) == 1, idp_pages
                assert idp_pages[0].startswith(f"303 {demo.idp_url}/authorize?"), idp_pages
                assert page.locator("input[name=password]").count() == 0

                # App A calls the API with the user's access token.
                page.goto(demo.app_a_url + "/")
                page.click("#call-api")
                page.wait_for_url(demo.app_a_url + "/api")
                assert page.inner_text("#api-status") == "200"
                result = page.inner_text("#api-result")
                assert '"client_id": "{}"'.format(demo.clients["a"]["client_id"]) in result
                answer = json.loads(result)
                assert answer["aud"] == [demo.api_url]  # addressed to the API, nothing else
                assert "notes:read" in answer["scopes"]
                assert answer["subject"] and answer["notes"]

                # Sign out at app A (and at the IdP); app B hears of it by back channel.
                page.goto(demo.app_a_url + "/")
                with page.expect_navigation(url=demo.app_a_url + "/signed-out?state=*"):
                    page.click("#logout")
                assert "You are signed out." in page.inner_text("body")
                page.goto(demo.app_a_url + "/")
                assert page.inner_text("#status") == "Not signed in."
                _poll_signed_out(page, demo.app_b_url + "/")

                # The IdP session is gone too: signing in at app B asks for the password.
                page.click("#login")
                page.wait_for_url(f"{demo.idp_url}/authorize?**")
                assert page.locator("input[name=password]").count() == 1
            except Exception:
                shots = tmp_path / "screenshots"
                shots.mkdir(exist_ok=True)
                page.screenshot(path=str(shots / f"{request.node.name}.png"), full_page=True)
                print(demo.logs())
                raise
        finally:
            browser.close()


@pytest.fixture
def sqlite_demo(tmp_path: Path) -> Iterator[Demo]:
    ports = Ports(free_port(), free_port(), free_port(), free_port())
    with running_demo(tmp_path, ports) as running:
        yield running


def _logout_token(key: Key, kid: str, demo: Demo, **changes: Any) -> str:
    now = int(time.time())
    claims = {
        "iss": demo.idp_url,
        "aud": demo.clients["b"]["client_id"],
        "iat": now,
        "exp": now + 120,
        "jti": "j1",
        "sid": "some-sid",
        "sub": "some-sub",
        "events": {BACKCHANNEL_LOGOUT_EVENT: {}},
        **changes,
    }
    claims = {k: v for k, v in claims.items() if v is not None}
    header = {"alg": "ES256", "kid": kid, "typ": "logout+jwt"}
    return jwt.encode(header, claims, key)


def test_api_and_backchannel_endpoint_refuse_bad_tokens(sqlite_demo: Demo) -> None:
    """The API answers RFC 6750 challenges; the logout endpoint refuses forged logout tokens."""
    demo = sqlite_demo
    bare = httpx.get(f"{demo.api_url}/notes", timeout=10)
    assert bare.status_code == 401
    assert bare.headers["www-authenticate"] == (
        f'Bearer realm="notes", resource_metadata="{demo.api_url}{PROTECTED_RESOURCE}"'
    )
    forged = httpx.get(
        f"{demo.api_url}/notes", headers={"Authorization": "Bearer a.b.c"}, timeout=10
    )
    assert forged.status_code == 401
    assert 'error="invalid_token"' in forged.headers["www-authenticate"]
    assert forged.headers["www-authenticate"].endswith(
        f'resource_metadata="{demo.api_url}{PROTECTED_RESOURCE}"'
    )

    jwks = httpx.get(f"{demo.idp_url}/jwks.json", timeout=10).json()["keys"]
    es256_kid = next(k["kid"] for k in jwks if k["alg"] == "ES256")
    foreign = ECKey.generate_key("P-256")
    logout_uri = f"{demo.app_b_url}/backchannel-logout"
    refused = [
        "",
        "not.a.token",
        _logout_token(foreign, es256_kid, demo),  # a real kid, a foreign signature
        _logout_token(foreign, "unknown-kid", demo),
    ]
    for token in refused:
        answer = httpx.post(logout_uri, data={"logout_token": token}, timeout=10)
        assert answer.status_code == 400, (token, answer.text)
        assert answer.json()["error"] == "invalid_request"
        assert answer.headers["cache-control"] == "no-store"


def test_the_api_advertises_its_authorization_server(sqlite_demo: Demo) -> None:
    """RFC 9728: from the API's metadata a client finds the IdP, and where to ask for a token."""
    demo = sqlite_demo
    answer = httpx.get(f"{demo.api_url}{PROTECTED_RESOURCE}", timeout=10)
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/json"
    assert "max-age=" in answer.headers["cache-control"]
    document = answer.json()
    assert document["resource"] == demo.api_url  # the API's audience, as its tokens carry it
    assert document["authorization_servers"] == [demo.idp_url]
    assert document["scopes_supported"] == ["notes:read"]
    assert document["bearer_methods_supported"] == ["header"]
    assert document["dpop_bound_access_tokens_required"] is False
    issuer = document["authorization_servers"][0]
    discovery = httpx.get(f"{issuer}/.well-known/openid-configuration", timeout=10).json()
    assert discovery["issuer"] == issuer
    assert discovery["token_endpoint"] == f"{demo.idp_url}/token"


BASE_CLAIMS: dict[str, Any] = {
    "iss": "https://idp.example",
    "aud": "client-b",
    "jti": "j1",
    "sid": "s1",
    "sub": "u1",
    "events": {BACKCHANNEL_LOGOUT_EVENT: {}},
}


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"iss": "https://other.example"}, "wrong iss"),
        ({"aud": "client-a"}, "wrong aud"),
        ({"aud": ["client-a", "client-c"]}, "wrong aud"),
        ({"iat": None}, "iat and exp are required"),
        ({"exp": -3600}, "expired"),
        ({"iat": 3600}, "not yet valid"),
        ({"events": {}}, "event is missing"),
        ({"events": {BACKCHANNEL_LOGOUT_EVENT: "yes"}}, "event is missing"),
        ({"nonce": "n"}, "nonce"),
        ({"sid": None, "sub": None}, "sid or sub"),
    ],
)
def test_logout_claims_refused(change: dict[str, Any], reason: str) -> None:
    """Back-Channel Logout 1.0 section 2.6: each broken rule refuses the token."""
    now = int(time.time())
    claims = {**BASE_CLAIMS, "iat": now, "exp": now + 120}
    for name, value in change.items():
        if value is None:
            claims.pop(name, None)
        elif name in ("iat", "exp") and isinstance(value, int):
            claims[name] = now + value
        else:
            claims[name] = value
    with pytest.raises(LogoutTokenError, match=reason):
        check_logout_claims(claims, "https://idp.example", "client-b")


def test_logout_claims_accepted_with_sid_or_sub_alone() -> None:
    now = int(time.time())
    for missing in ("sid", "sub"):
        claims = {**BASE_CLAIMS, "iat": now, "exp": now + 120, "aud": ["x", "client-b"]}
        del claims[missing]
        assert check_logout_claims(claims, "https://idp.example", "client-b") == claims


def test_provision_writes_the_apps_settings_once(tmp_path: Path) -> None:
    """``examples.launch provision`` (used by docker-compose.yml) registers the clients once."""
    out = tmp_path / "shared"
    out.mkdir()
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    env = {
        "IDP_ISSUER": "https://idp.localhost:8443",
        "IDP_DATABASE_URL": f"sqlite:///{tmp_path}/idp.db",
        "IDP_KEY_ENCRYPTION_KEY": new_key_encryption_key(),
        # As docker-compose.yml sets it: the apps' names resolve to the proxy's private address.
        "IDP_ALLOW_PRIVATE_BACKCHANNEL": compose["x-idp"]["environment"][
            "IDP_ALLOW_PRIVATE_BACKCHANNEL"
        ],
    }
    migrate(env, tmp_path)
    args = [
        sys.executable, "-m", "examples.launch", "provision", f"--out={out}",
        "--app-a-url=https://app-a.localhost:8443", "--app-b-url=https://app-b.localhost:8443",
        "--api-url=https://api.localhost:8443",
    ]  # fmt: skip
    for _ in range(2):
        done = subprocess.run(
            args, env=child_env(env), cwd=ROOT, capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, done.stderr
    assert "already provisioned" in done.stdout
    clients = idp_json(["clients", "list"], env, tmp_path)
    assert sorted(c["name"] for c in clients) == ["App A", "App B"]
    app_a = dict(line.split("=", 1) for line in (out / "app-a.env").read_text().splitlines())
    client_a = next(c for c in clients if c["name"] == "App A")
    assert app_a["EXAMPLE_CLIENT_ID"] == client_a["client_id"]
    assert client_a["audiences"] == ["https://api.localhost:8443"]
    assert client_a["backchannel_logout_uri"] == "https://app-a.localhost:8443/backchannel-logout"
    assert app_a["EXAMPLE_API_URL"] == "https://api.localhost:8443"
    assert (out / "app-a.env").stat().st_mode & 0o077 == 0
    assert "password: " in (out / "demo-user.txt").read_text()


def _local(sid: str, sub: str) -> LocalSession:
    return LocalSession(user={}, sid=sid, sub=sub, id_token="i", access_token="a")


def test_local_sessions_end_by_sid_or_by_subject() -> None:
    """A logout token with ``sid`` ends that IdP session's local sessions; with ``sub`` only, all
    of the user's (Back-Channel Logout 1.0 section 2.7)."""
    sessions = LocalSessions()
    first = sessions.start(_local("s1", "u1"))
    second = sessions.start(_local("s1", "u1"))
    other_browser = sessions.start(_local("s2", "u1"))
    other_user = sessions.start(_local("s3", "u2"))
    assert sessions.end_for(sid="s1", sub="u1") == 2
    assert sessions.get(first) is None and sessions.get(second) is None
    assert sessions.get(other_browser) is not None and sessions.get(other_user) is not None
    assert sessions.end_for(sid="s1", sub="u1") == 0
    assert sessions.end_for(sid=None, sub="u1") == 1
    assert sessions.get(other_browser) is None and sessions.get(other_user) is not None
    assert sessions.by_sid.get("s2") == set()
