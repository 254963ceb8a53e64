"""Introspection (RFC 7662) and revocation (RFC 7009) over real HTTP, on both stores.

The server runs with a movable clock so expiry is reached by moving time. Access tokens
come from ``POST /token``; refresh tokens start with ``issue_refresh_token`` (as the
authorization code grant does) and rotate through ``POST /token``. Hostile tokens are
forged with a foreign key, or with the server's own keys (opened from the store with the
key-encryption key) to break one claim at a time.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey
from prometheus_client.parser import text_string_to_metric_families

from idp.admin.context import AdminContext
from idp.admin.keys import revoke_key
from idp.admin.users import UserRef, UserUpdate, update_user
from idp.config import Settings
from idp.keyring.ring import KeyRing
from idp.store.base import Store
from tests.support.server import LiveServer, basic, register_client, start_server, with_store
from tests.support.sso import AuthorizeParams, MovableClock, sign_in
from tests.support.sso import add_user as add_person
from tests.support.tokens import AUDIENCE, add_user, assert_oauth_error, issue

OTHER_AUDIENCE = "https://other.example.com"


@dataclass
class World:
    """A running server with a movable clock and the clients the tests use."""

    server: LiveServer
    clock: MovableClock
    http: httpx.Client
    app: tuple[str, str]
    """Confidential client: client_credentials and refresh_token, audience AUDIENCE."""
    api: tuple[str, str]
    """A resource server registered with audience AUDIENCE (no grant of its own needed)."""
    stranger: tuple[str, str]
    """A confidential client of another audience."""

    @property
    def settings(self) -> Settings:
        return self.server.settings

    def introspect(self, client: tuple[str, str], token: str, **extra: str) -> httpx.Response:
        return self.http.post("/introspect", data={"token": token, **extra}, headers=basic(*client))

    def active(self, client: tuple[str, str], token: str, **extra: str) -> dict[str, Any]:
        response = self.introspect(client, token, **extra)
        assert response.status_code == 200, response.text
        assert response.headers["cache-control"] == "no-store"
        assert response.headers["content-type"] == "application/json"
        body: dict[str, Any] = response.json()
        return body

    def revoke(self, client: tuple[str, str], token: str, **extra: str) -> httpx.Response:
        return self.http.post("/revoke", data={"token": token, **extra}, headers=basic(*client))

    def access_token(self, client: tuple[str, str] | None = None, **extra: str) -> str:
        response = self.http.post(
            "/token",
            data={"grant_type": "client_credentials", **extra},
            headers=basic(*(client or self.app)),
        )
        assert response.status_code == 200, response.text
        token: str = response.json()["access_token"]
        return token

    def refresh(self, token: str, client: tuple[str, str] | None = None) -> httpx.Response:
        return self.http.post(
            "/token",
            data={"grant_type": "refresh_token", "refresh_token": token},
            headers=basic(*(client or self.app)),
        )


@pytest.fixture
def world(settings: Settings, port: int) -> Iterator[World]:
    clock = MovableClock()
    server = start_server(settings, port, clock=clock)
    try:
        common = {"scope": "read write", "access_token_alg": "ES256"}
        app = register_client(
            settings,
            "app",
            grant_types=["client_credentials", "refresh_token"],
            audiences=[AUDIENCE],
            **common,
        )
        api = register_client(settings, "api", audiences=[AUDIENCE])
        stranger = register_client(settings, "stranger", audiences=[OTHER_AUDIENCE])
        with httpx.Client(base_url=server.url, timeout=10) as http:
            yield World(server, clock, http, app, api, stranger)
    finally:
        server.stop()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _json(segment: str) -> dict[str, Any]:
    decoded: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    )
    return decoded


def _segments(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    header, payload, _ = token.split(".")
    return _json(header), _json(payload)


def server_ring(settings: Settings) -> KeyRing:
    """The server's own keys, private parts included (the test holds the KEK)."""

    async def build(store: Store) -> KeyRing:
        return KeyRing.build(
            await store.list_keys(), await store.key_ring_version(), settings.key_encryption_key
        )

    return with_store(settings.database_url, build)


def forged_with_our_key(world: World, template: str, **changes: Any) -> str:
    """The claims of ``template`` with ``changes`` (None removes a claim), signed by our key."""
    header, claims = _segments(template)
    for name, value in changes.pop("header", {}).items():
        header[name] = value
    for name, value in changes.items():
        if value is None:
            claims.pop(name, None)
        else:
            claims[name] = value
    ring = server_ring(world.settings)
    alg = header["alg"]
    kid, key = ring.signing[alg]
    header = {**header, "kid": kid}
    return jwt.encode(header, claims, key, algorithms=[alg])


# -- active tokens: the RFC 7662 section 2.2 members ---------------------------------------


@pytest.mark.parametrize("alg", ["RS256", "ES256"])
def test_active_client_token_to_its_client_and_to_its_audience(world: World, alg: str) -> None:
    client = register_client(
        world.settings,
        f"svc-{alg}",
        scope="read write",
        audiences=[AUDIENCE, OTHER_AUDIENCE],
        access_token_alg=alg,
    )
    token = world.access_token(client, scope="read", resource=AUDIENCE)
    header, claims = _segments(token)
    assert header["alg"] == alg
    expected = {
        "active": True,
        "token_type": "Bearer",
        "scope": "read",
        "client_id": client[0],
        "sub": client[0],
        "aud": AUDIENCE,
        "iss": world.server.url,
        "exp": claims["exp"],
        "iat": claims["iat"],
        "jti": claims["jti"],
    }
    assert world.active(client, token) == expected  # the client it was issued to
    assert world.active(world.api, token) == expected  # a resource server of its audience
    # Another client learns nothing, not even that the token exists (RFC 7662 section 2.2).
    assert world.active(world.stranger, token) == {"active": False}
    # A token for the other audience is described to that audience's resource server.
    other = world.access_token(client, resource=OTHER_AUDIENCE)
    assert world.active(world.stranger, other)["active"] is True
    assert world.active(world.api, other) == {"active": False}


def test_user_access_token_and_refresh_token(world: World) -> None:
    user = add_user(world.settings)
    first = issue(world.settings, world.app[0], user, clock=world.clock)
    live = world.active(world.app, first)
    assert live == {
        "active": True,
        "token_type": "refresh_token",
        "scope": "openid read write",
        "client_id": world.app[0],
        "username": f"user-{user}",
        "sub": user,
        "exp": live["exp"],
        "iat": live["iat"],
        "iss": world.server.url,
    }
    assert live["exp"] - live["iat"] == pytest.approx(world.settings.refresh_token_ttl, abs=1)
    # Refresh tokens are described to their own client only.
    assert world.active(world.api, first) == {"active": False}
    assert world.active(world.stranger, first) == {"active": False}

    body = world.refresh(first).json()
    access, second = body["access_token"], body["refresh_token"]
    described = world.active(world.api, access)
    assert described["active"] is True
    assert described["sub"] == user
    assert described["username"] == f"user-{user}"
    assert described["client_id"] == world.app[0]
    assert world.active(world.app, first) == {"active": False}  # rotated
    assert world.active(world.app, second)["active"] is True

    # A disabled user's tokens are no longer active, access and refresh alike.
    with_store(world.settings.database_url, lambda s: disable_user_row(s, user))
    assert world.active(world.api, access) == {"active": False}
    assert world.active(world.app, second) == {"active": False}


# -- inactive access tokens -----------------------------------------------------------------


def test_malformed_and_foreign_tokens_are_inactive(world: World) -> None:
    token = world.access_token()
    header, claims = _segments(token)
    foreign = ECKey.generate_key("P-256")
    forged = jwt.encode(header, claims, foreign, algorithms=["ES256"])  # our kid, not our key
    head, payload, signature = token.split(".")
    widened = _b64(json.dumps({**claims, "scope": "read write admin"}).encode())
    unsigned = _b64(json.dumps({"alg": "none", "kid": header["kid"]}).encode())
    cases = {
        "foreign key": forged,
        "tampered payload": f"{head}.{widened}.{signature}",
        "alg none": f"{unsigned}.{payload}.",
        "no signature": f"{head}.{payload}.",
        "truncated": token[:-10],
        "garbage": "not-a-token",
        "dots": "..",
        "unknown, refresh-shaped": "a" * 43,
    }
    for name, presented in cases.items():
        assert world.active(world.app, presented) == {"active": False}, name
    assert world.active(world.app, token)["active"] is True


def test_tokens_our_keys_signed_but_that_break_a_rule_are_inactive(world: World) -> None:
    template = world.access_token()
    assert world.active(world.app, forged_with_our_key(world, template))["active"] is True
    cases = {
        "other issuer": forged_with_our_key(world, template, iss="https://evil.example"),
        "no jti": forged_with_our_key(world, template, jti=None),
        "no exp": forged_with_our_key(world, template, exp=None),
        "issued in the future": forged_with_our_key(world, template, iat=int(time.time()) + 3600),
        "not an access token": forged_with_our_key(world, template, header={"typ": "JWT"}),
        "expired a second ago": forged_with_our_key(world, template, exp=int(time.time()) - 1),
    }
    for name, presented in cases.items():
        assert world.active(world.app, presented) == {"active": False}, name


def test_expiry_follows_the_servers_clock(world: World) -> None:
    token = world.access_token()
    _, claims = _segments(token)
    world.clock.advance(claims["exp"] - time.time() - 60)
    assert world.active(world.api, token)["active"] is True
    world.clock.advance(60)  # exp reached: expired, no leeway for the issuer's own clock
    assert world.active(world.api, token) == {"active": False}


def test_a_revoked_key_makes_its_tokens_inactive_at_once(world: World) -> None:
    token = world.access_token()
    kid = _segments(token)[0]["kid"]
    assert world.active(world.api, token)["active"] is True
    with_store(
        world.settings.database_url, lambda s: revoke_key(AdminContext(s, world.settings), kid)
    )
    # No waiting for the key-ring watcher: introspection re-reads a changed ring.
    assert world.active(world.api, token) == {"active": False}
    fresh = world.access_token()
    assert _segments(fresh)[0]["kid"] != kid
    assert world.active(world.api, fresh)["active"] is True


# -- revocation -----------------------------------------------------------------------------


def test_revoked_access_token_is_inactive_for_everyone(world: World) -> None:
    token = world.access_token()
    other = world.access_token()
    response = world.revoke(world.app, token, token_type_hint="access_token")
    assert response.status_code == 200
    assert response.content == b""
    assert response.headers["cache-control"] == "no-store"
    assert world.active(world.app, token) == {"active": False}
    assert world.active(world.api, token) == {"active": False}
    assert world.active(world.api, other)["active"] is True  # only that jti
    assert world.revoke(world.app, token).status_code == 200  # again: still 200
    jti = _segments(token)[1]["jti"]
    assert with_store(
        world.settings.database_url, lambda s: s.access_token_revoked(jti, world.app[0])
    )


def test_only_the_tokens_client_may_revoke_it(world: World) -> None:
    token = world.access_token()
    # Even a resource server of its audience may not (RFC 7009 section 2.1).
    for client in (world.api, world.stranger):
        assert_oauth_error(world.revoke(client, token), 400, "invalid_request")
    assert world.active(world.api, token)["active"] is True
    user = add_user(world.settings)
    refresh_token = issue(world.settings, world.app[0], user, clock=world.clock)
    assert_oauth_error(world.revoke(world.stranger, refresh_token), 400, "invalid_request")
    assert world.active(world.app, refresh_token)["active"] is True
    assert world.refresh(refresh_token).status_code == 200


def test_revoking_a_refresh_token_revokes_its_family(world: World) -> None:
    user = add_user(world.settings)
    first = issue(world.settings, world.app[0], user, clock=world.clock)
    second = world.refresh(first).json()["refresh_token"]
    unrelated = issue(world.settings, world.app[0], user, clock=world.clock)
    # The old, rotated token revokes the whole grant, its live successor included.
    response = world.revoke(world.app, first, token_type_hint="refresh_token")
    assert response.status_code == 200
    assert response.content == b""
    assert world.active(world.app, second) == {"active": False}
    assert_oauth_error(world.refresh(second), 400, "invalid_grant")
    assert world.active(world.app, unrelated)["active"] is True
    assert world.revoke(world.app, second).status_code == 200  # already revoked: still 200


def test_a_public_client_revokes_its_own_refresh_token(world: World) -> None:
    public_id, _ = register_client(
        world.settings,
        "spa",
        public=True,
        grant_types=["authorization_code", "refresh_token"],
        redirect_uris=["http://127.0.0.1:9/cb"],
    )
    user = add_user(world.settings)
    token = issue(world.settings, public_id, user, clock=world.clock)
    response = world.http.post("/revoke", data={"token": token, "client_id": public_id})
    assert response.status_code == 200
    assert world.active(world.app, token) == {"active": False}
    record = with_store(world.settings.database_url, lambda s: _row(s, token))
    assert record is not None and record.revoked_at is not None
    # But it may not introspect: it cannot authenticate (RFC 7662 section 2.1).
    refused = world.http.post("/introspect", data={"token": token, "client_id": public_id})
    assert_oauth_error(refused, 401, "invalid_client")


def test_a_public_client_cannot_tell_a_live_token_from_garbage(world: World) -> None:
    """RFC 7009 2.1 with an unauthenticated caller: another client's live token and a random
    string get the same answer, and the token is left alone."""
    public_id, _ = register_client(
        world.settings,
        "spa",
        public=True,
        grant_types=["authorization_code", "refresh_token"],
        redirect_uris=["http://127.0.0.1:9/cb"],
    )
    access = world.access_token()
    refresh = issue(world.settings, world.app[0], add_user(world.settings), clock=world.clock)
    answers = [
        world.http.post("/revoke", data={"token": token, "client_id": public_id})
        for token in (access, refresh, "a.b.c", secrets.token_urlsafe(32))
    ]
    assert {(a.status_code, a.content, a.headers["cache-control"]) for a in answers} == {
        (200, b"", "no-store")
    }
    assert world.active(world.app, access)["active"] is True
    assert world.active(world.app, refresh)["active"] is True
    # An authenticated confidential client is still told (RFC 7009 section 2.1).
    assert_oauth_error(world.revoke(world.stranger, access), 400, "invalid_request")


async def _row(store: Store, token: str) -> Any:
    from idp.oauth.refresh_tokens import find_refresh_token

    return await find_refresh_token(store, token)


def test_unknown_and_invalid_tokens_are_revoked_without_error(world: World) -> None:
    expired_refresh = issue(
        world.settings, world.app[0], add_user(world.settings), clock=world.clock
    )
    access = world.access_token()
    world.clock.advance(world.settings.refresh_token_ttl + 1)
    for token in ("unknown", secrets.token_urlsafe(32), "a.b.c", expired_refresh, access):
        response = world.revoke(world.app, token)
        assert response.status_code == 200, token
        assert response.content == b""
    assert world.active(world.app, expired_refresh) == {"active": False}
    # An expired access token of another client is no longer anyone's: 200 as well.
    assert world.revoke(world.stranger, access).status_code == 200


def test_inactive_refresh_tokens(world: World) -> None:
    user = add_user(world.settings)
    expiring = issue(world.settings, world.app[0], user, clock=world.clock)
    revoked = issue(world.settings, world.app[0], user, family="fam-x", clock=world.clock)
    with_store(world.settings.database_url, lambda s: s.revoke_refresh_family("fam-x", time.time()))
    assert world.active(world.app, revoked) == {"active": False}
    assert world.active(world.app, secrets.token_urlsafe(32)) == {"active": False}
    assert world.active(world.app, expiring)["active"] is True
    world.clock.advance(world.settings.refresh_token_ttl)
    assert world.active(world.app, expiring) == {"active": False}


# -- hints, client authentication and hostile requests --------------------------------------


@pytest.mark.parametrize("hint", [None, "access_token", "refresh_token", "id_token", "x" * 300])
def test_any_hint_finds_either_kind_of_token(world: World, hint: str | None) -> None:
    extra = {"token_type_hint": hint} if hint else {}
    access = world.access_token()
    refresh_token = issue(world.settings, world.app[0], add_user(world.settings))
    assert world.active(world.app, access, **extra)["token_type"] == "Bearer"
    assert world.active(world.app, refresh_token, **extra)["token_type"] == "refresh_token"
    assert world.revoke(world.app, access, **extra).status_code == 200
    assert world.revoke(world.app, refresh_token, **extra).status_code == 200
    assert world.active(world.app, access) == {"active": False}
    assert world.active(world.app, refresh_token) == {"active": False}


@pytest.mark.parametrize("path", ["/introspect", "/revoke"])
def test_client_authentication_is_that_of_the_token_endpoint(world: World, path: str) -> None:
    token = world.access_token()
    client_id, secret = world.app
    post = world.http.post

    def refused(response: httpx.Response, header_sent: bool = True) -> None:
        """RFC 6749 section 5.2: the error is in the challenge when the header was tried."""
        assert_oauth_error(response, 401, "invalid_client")
        realm = f'Basic realm="{world.settings.issuer}"'
        description = response.json()["error_description"]
        assert response.headers["www-authenticate"] == (
            f'{realm}, error="invalid_client", error_description="{description}"'
            if header_sent
            else realm
        )

    refused(post(path, data={"token": token}), header_sent=False)
    refused(post(path, data={"token": token}, headers=basic(client_id, "wrong")))
    refused(post(path, data={"token": token}, headers=basic("nobody", secret)))
    refused(post(path, data={"token": token, "client_id": client_id}), header_sent=False)
    refused(post(path, data={"token": token}, headers={"Authorization": f"Bearer {token}"}))
    refused(post(path, data={"token": token}, headers=basic("x" * 300, secret)))
    both = {"token": token, "client_id": client_id, "client_secret": secret}
    assert_oauth_error(post(path, data=both, headers=basic(*world.app)), 400, "invalid_request")
    assert_oauth_error(
        post(path, data={"token": token}, headers=[*basic(*world.app).items()] * 2),
        400,
        "invalid_request",
    )
    assert_oauth_error(post(path, data={}, headers=basic(*world.app)), 400, "invalid_request")
    assert_oauth_error(
        post(path, json={"token": token}, headers=basic(*world.app)), 400, "invalid_request"
    )
    assert (
        world.http.get(path, params={"token": token}, headers=basic(*world.app)).status_code == 405
    )
    # Each client uses its registered method, as at /token: client_secret_post here.
    post_id, post_secret = register_client(
        world.settings,
        "poster",
        audiences=[AUDIENCE],
        token_endpoint_auth_method="client_secret_post",
    )
    refused(post(path, data={"token": token}, headers=basic(post_id, post_secret)))
    answer = post(path, data={"token": token, "client_id": post_id, "client_secret": post_secret})
    if path == "/introspect":
        assert answer.status_code == 200
        assert answer.json()["active"] is True
    else:  # authenticated, but the token is the app's (RFC 7009 section 2.1)
        assert_oauth_error(answer, 400, "invalid_request")


@pytest.mark.parametrize("path", ["/introspect", "/revoke"])
def test_hostile_input_never_gives_a_server_error(world: World, path: str) -> None:
    headers = {**basic(*world.app), "Content-Type": "application/x-www-form-urlencoded"}
    bodies = [
        b"token=" + b"A" * 60_000,
        b"token=" + b"a." * 20_000,
        b"token=" + "é".encode() * 1000,
        b"token=%FF%FE%00",
        b"token=\xff\xfe\x00binary",
        b"token=a&token=b",
        b"token=a&token_type_hint=access_token&token_type_hint=refresh_token",
        b"token=eyJhbGciOiJub25lIn0.e30.",
        b"token=" + _b64(b'{"kid":[1],"alg":{}}').encode() + b".e30.AAAA",
        b"token=" + _b64(b"[]").encode() + b"." + _b64(b"[]").encode() + b".AAAA",
        b"token=%00",
        b"&&&==&",
        b"token",
    ]
    for body in bodies:
        response = world.http.post(path, content=body, headers=headers)
        assert response.status_code in (200, 400, 413), (body[:40], response.text)
        if response.content:
            assert response.headers["content-type"] == "application/json"
        if response.status_code == 200 and path == "/introspect":
            assert response.json() == {"active": False}, body[:40]


# -- deleted clients and users, metrics (the store's side is in tests/store/test_revocation.py)


def test_deleting_the_tokens_client_or_user_makes_it_inactive(world: World) -> None:
    client = register_client(world.settings, "short-lived", audiences=[AUDIENCE])
    token = world.access_token(client)
    assert world.active(world.api, token)["active"] is True
    with_store(world.settings.database_url, lambda s: s.delete_client(client[0]))
    assert world.active(world.api, token) == {"active": False}

    user = add_user(world.settings)
    access = world.refresh(issue(world.settings, world.app[0], user)).json()["access_token"]
    assert world.active(world.api, access)["active"] is True
    with_store(world.settings.database_url, lambda s: s.delete_user(user))
    assert world.active(world.api, access) == {"active": False}


def test_metrics_count_introspections_and_revocations(world: World) -> None:
    token = world.access_token()
    world.active(world.api, token)
    world.active(world.stranger, token)
    world.active(world.api, "unknown")
    world.revoke(world.app, token)
    world.revoke(world.app, token)
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(world.http.get("/metrics").text)
        for sample in family.samples
    }
    assert samples[("idp_introspections_total", (("active", "true"),))] == 1
    assert samples[("idp_introspections_total", (("active", "false"),))] == 2
    assert samples[("idp_revocations_total", (("revoked", "true"),))] == 1
    assert samples[("idp_revocations_total", (("revoked", "false"),))] == 1


CALLBACK = "http://127.0.0.1:8765/web/cb"


@dataclass
class CodeFlow:
    """A confidential web client, a person signed in, and the code the sign-in gave."""

    client: tuple[str, str]
    person: str
    person_name: str
    request: AuthorizeParams
    code: str


def code_flow(world: World, scope: str = "openid profile email") -> CodeFlow:
    """Register a client, sign a new person in through the browser flow, return the code."""
    username = f"p{secrets.token_hex(4)}"
    client = register_client(
        world.settings,
        f"web-{username}",
        redirect_uris=[CALLBACK],
        grant_types=["authorization_code", "refresh_token"],
        scope="openid profile email offline_access",
        audiences=[AUDIENCE],
    )
    person = add_person(world.settings, username=username)
    request = AuthorizeParams(client[0], CALLBACK, scope=scope)
    with httpx.Client(base_url=world.server.url, timeout=30) as browser:
        code = sign_in(browser, request, username=username)["code"]
    return CodeFlow(client, person, username, request, code)


def redeem_code(world: World, flow: CodeFlow) -> httpx.Response:
    return world.http.post(
        "/token",
        data={
            "grant_type": "authorization_code",
            "code": flow.code,
            "redirect_uri": CALLBACK,
            "code_verifier": flow.request.verifier,
        },
        headers=basic(*flow.client),
    )


def userinfo(world: World, access: str) -> httpx.Response:
    return world.http.get("/userinfo", headers={"Authorization": f"Bearer {access}"})


def assert_refused_at_userinfo(world: World, access: str) -> None:
    """401 invalid_token with its challenge (RFC 6750 section 3.1)."""
    response = userinfo(world, access)
    assert_oauth_error(response, 401, "invalid_token")
    assert response.headers["www-authenticate"].startswith(
        'Bearer realm="idp", error="invalid_token"'
    )


def test_tokens_of_the_code_flow_introspect_and_revoke(world: World) -> None:
    flow = code_flow(world)
    tokens = redeem_code(world, flow).json()
    access, refresh_token = tokens["access_token"], tokens["refresh_token"]
    claims = _segments(access)[1]
    assert claims["grant_id"] and claims["sid"]  # names its grant and its session
    described = world.active(world.api, access)
    assert (described["sub"], described["username"]) == (flow.person, flow.person_name)
    assert described["scope"] == "openid profile email"
    assert world.active(flow.client, refresh_token)["username"] == flow.person_name
    refreshed = world.refresh(refresh_token, flow.client).json()
    second_access, second_refresh = refreshed["access_token"], refreshed["refresh_token"]
    assert _segments(second_access)[1]["grant_id"] == claims["grant_id"]
    assert userinfo(world, second_access).status_code == 200

    # Revoking the (rotated) refresh token ends the grant: every access token it issued.
    assert world.revoke(flow.client, refresh_token).status_code == 200
    assert world.active(flow.client, second_refresh) == {"active": False}
    assert_oauth_error(world.refresh(second_refresh, flow.client), 400, "invalid_grant")
    for issued in (access, second_access):
        assert world.active(world.api, issued) == {"active": False}
        assert world.active(flow.client, issued) == {"active": False}
        assert_refused_at_userinfo(world, issued)
    assert world.revoke(flow.client, access).status_code == 200  # already inactive: 200


def test_access_token_revoked_by_jti_is_refused_at_userinfo(world: World) -> None:
    flow = code_flow(world)
    tokens = redeem_code(world, flow).json()
    access = tokens["access_token"]
    assert userinfo(world, access).json()["sub"] == flow.person
    assert world.revoke(flow.client, access, token_type_hint="access_token").status_code == 200
    assert_refused_at_userinfo(world, access)
    assert world.active(world.api, access) == {"active": False}
    # Only that token: the grant goes on, and its next access token is accepted.
    refreshed = world.refresh(tokens["refresh_token"], flow.client)
    assert userinfo(world, refreshed.json()["access_token"]).status_code == 200


def test_a_replayed_code_ends_the_grant_of_its_first_redemption(world: World) -> None:
    flow = code_flow(world)
    first = redeem_code(world, flow).json()
    assert userinfo(world, first["access_token"]).status_code == 200
    assert world.active(world.api, first["access_token"])["active"] is True
    assert_oauth_error(redeem_code(world, flow), 400, "invalid_grant")
    assert world.active(world.api, first["access_token"]) == {"active": False}
    assert_refused_at_userinfo(world, first["access_token"])
    assert world.active(flow.client, first["refresh_token"]) == {"active": False}


def test_refresh_reuse_ends_the_grant_and_its_access_tokens(world: World) -> None:
    flow = code_flow(world)
    first = redeem_code(world, flow).json()
    second = world.refresh(first["refresh_token"], flow.client).json()
    world.clock.advance(world.settings.refresh_reuse_grace + 1)
    # The rotated token comes back after the grace: a stolen copy, the family is revoked.
    assert_oauth_error(world.refresh(first["refresh_token"], flow.client), 400, "invalid_grant")
    for access in (first["access_token"], second["access_token"]):
        assert world.active(world.api, access) == {"active": False}
        assert_refused_at_userinfo(world, access)
    assert world.active(flow.client, second["refresh_token"]) == {"active": False}


def test_a_disabled_users_tokens_stay_refused_when_enabled_again(world: World) -> None:
    flow = code_flow(world, scope="openid profile offline_access")
    tokens = redeem_code(world, flow).json()
    client_token = world.access_token()
    assert userinfo(world, tokens["access_token"]).status_code == 200

    async def set_disabled(store: Store, disabled: bool) -> None:
        ctx = AdminContext(store, world.settings, clock=world.clock)
        await update_user(ctx, UserRef(id=flow.person), UserUpdate(disabled=disabled))

    with_store(world.settings.database_url, lambda s: set_disabled(s, True))
    assert_refused_at_userinfo(world, tokens["access_token"])
    assert world.active(world.api, tokens["access_token"]) == {"active": False}
    # Enabling the account again does not revive what disabling it ended (offline too).
    with_store(world.settings.database_url, lambda s: set_disabled(s, False))
    assert_refused_at_userinfo(world, tokens["access_token"])
    assert world.active(world.api, tokens["access_token"]) == {"active": False}
    assert world.active(world.api, client_token)["active"] is True


def test_a_deleted_clients_user_tokens_are_refused_at_userinfo(world: World) -> None:
    flow = code_flow(world)
    access = redeem_code(world, flow).json()["access_token"]
    assert userinfo(world, access).status_code == 200
    with_store(world.settings.database_url, lambda s: s.delete_client(flow.client[0]))
    assert_refused_at_userinfo(world, access)


async def disable_user_row(store: Store, user_id: str) -> None:
    """Set a user's disabled flag straight in the store."""
    user = await store.get_user(user_id)
    assert user is not None
    assert await store.update_user(replace(user, disabled=True))
