"""private_key_jwt client authentication (RFC 7523, OpenID Connect Core 1.0 section 9) over a
real server, on both stores: the token, introspection, revocation and PAR endpoints accept a
signed assertion, and refuse a wrong key, a replay (on every replica), a wrong audience or
issuer, an expired or long-lived assertion, and secrets for such a client."""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import httpx
import pytest
from authlib.integrations.httpx_client import OAuth2Client
from authlib.oauth2.rfc7523 import PrivateKeyJWT
from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey

from idp.config import Settings
from idp.oauth.registration import InvalidClientMetadata
from tests.support.cli import Idp
from tests.support.server import LiveServer, basic, free_port, register_client, start_server
from tests.support.sso import MovableClock

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


@dataclass
class KeyPair:
    kid: str
    alg: str
    key: ECKey | RSAKey

    def public(self) -> dict[str, Any]:
        return {**self.key.as_dict(private=False), "kid": self.kid, "alg": self.alg, "use": "sig"}


def es256(kid: str = "k1") -> KeyPair:
    return KeyPair(kid, "ES256", ECKey.generate_key("P-256", private=True))


def rs256(kid: str = "r1") -> KeyPair:
    return KeyPair(kid, "RS256", RSAKey.generate_key(2048, private=True))


def key_set(*pairs: KeyPair) -> str:
    return json.dumps({"keys": [p.public() for p in pairs]})


def assertion(pair: KeyPair, client_id: str, audience: str, **overrides: Any) -> str:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": client_id,
        "sub": client_id,
        "aud": audience,
        "iat": now,
        "exp": now + 120,
        "jti": secrets.token_urlsafe(16),
    }
    claims.update(overrides)
    claims = {k: v for k, v in claims.items() if v is not None}
    header = {"alg": pair.alg, "kid": pair.kid}
    return jwt.encode(header, claims, pair.key)


def token_form(client_assertion: str, **extra: str) -> dict[str, str]:
    return {
        "grant_type": "client_credentials",
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": client_assertion,
        **extra,
    }


@pytest.fixture
def keyed(settings: Settings, live_server: LiveServer) -> tuple[str, KeyPair, KeyPair]:
    """A machine client authenticating with private_key_jwt, with an ES256 and an RS256 key."""
    ec, rsa = es256(), rs256()
    client_id, secret = register_client(
        settings,
        "keyed",
        grant_types=["client_credentials"],
        token_endpoint_auth_method="private_key_jwt",
        jwks=key_set(ec, rsa),
    )
    assert secret == ""
    return client_id, ec, rsa


def test_token_endpoint_accepts_assertions_signed_by_registered_keys(
    live_server: LiveServer, keyed: tuple[str, KeyPair, KeyPair]
) -> None:
    client_id, ec, rsa = keyed
    url = f"{live_server.url}/token"
    for pair, audience in ((ec, live_server.url), (rsa, url)):
        answer = httpx.post(url, data=token_form(assertion(pair, client_id, audience)), timeout=30)
        assert answer.status_code == 200, answer.text
        assert answer.json()["token_type"] == "Bearer"
    # client_id in the form as well is fine when it names the same client.
    form = token_form(assertion(ec, client_id, url), client_id=client_id)
    assert httpx.post(url, data=form, timeout=30).status_code == 200


def test_bad_assertions_are_refused_with_invalid_client(
    live_server: LiveServer, keyed: tuple[str, KeyPair, KeyPair], settings: Settings
) -> None:
    client_id, ec, _ = keyed
    url = f"{live_server.url}/token"
    other, _ = register_client(
        settings,
        "other",
        grant_types=["client_credentials"],
        token_endpoint_auth_method="private_key_jwt",
        jwks=key_set(es256("o1")),
    )
    now = int(time.time())
    stranger = es256("k1")  # the registered kid, another key
    cases = {
        "wrong key": assertion(stranger, client_id, url),
        "unknown kid": assertion(es256("nope"), client_id, url),
        "wrong issuer": assertion(ec, client_id, url, iss="someone"),
        "wrong subject": assertion(ec, client_id, url, sub=other),
        "wrong audience": assertion(ec, client_id, "https://elsewhere.example/token"),
        "expired": assertion(ec, client_id, url, iat=now - 600, exp=now - 60),
        "too long-lived": assertion(ec, client_id, url, exp=now + 7200),
        "no jti": assertion(ec, client_id, url, jti=None),
        "no exp": assertion(ec, client_id, url, exp=None),
        "not yet valid": assertion(ec, client_id, url, nbf=now + 300),
        "another client's key": assertion(es256("o1"), client_id, url),
        "not a JWT": "not.a.jwt",
    }
    for name, value in cases.items():
        answer = httpx.post(url, data=token_form(value), timeout=30)
        assert answer.status_code == 401, (name, answer.text)
        assert answer.json()["error"] == "invalid_client", name
    # The alg of the key, not the header's claim, decides: an RS256 key cannot verify ES256.
    mixed = KeyPair("r1", "ES256", ec.key)
    assert (
        httpx.post(url, data=token_form(assertion(mixed, client_id, url)), timeout=30).status_code
        == 401
    )
    # A client_id in the form that is not the assertion's subject.
    answer = httpx.post(
        url, data=token_form(assertion(ec, client_id, url), client_id=other), timeout=30
    )
    assert answer.status_code == 401
    # A secret, or nothing, is not enough for a private_key_jwt client.
    answer = httpx.post(
        url, data={"grant_type": "client_credentials"}, headers=basic(client_id, ""), timeout=30
    )
    assert answer.status_code == 401
    wrong_type = {**token_form(assertion(ec, client_id, url)), "client_assertion_type": "urn:x"}
    assert httpx.post(url, data=wrong_type, timeout=30).status_code == 401
    both = httpx.post(
        url,
        data=token_form(assertion(ec, client_id, url)),
        headers=basic(client_id, "x"),
        timeout=30,
    )
    assert both.status_code == 400 and both.json()["error"] == "invalid_request"


def test_a_replayed_assertion_is_refused_by_every_replica(
    settings: Settings, live_server: LiveServer, keyed: tuple[str, KeyPair, KeyPair]
) -> None:
    """Two servers on one store: an assertion used at one is refused at both."""
    client_id, ec, _ = keyed
    first = live_server
    second = start_server(settings, free_port())
    try:
        value = assertion(ec, client_id, settings.issuer)
        used = httpx.post(f"{first.url}/token", data=token_form(value), timeout=30)
        assert used.status_code == 200, used.text
        for server in (first, second):
            again = httpx.post(f"{server.url}/token", data=token_form(value), timeout=30)
            assert again.status_code == 401, again.text
            assert again.json()["error"] == "invalid_client"
    finally:
        second.stop()


def test_introspection_revocation_and_par_accept_assertions(
    live_server: LiveServer, settings: Settings
) -> None:
    ec = es256()
    client_id, _ = register_client(
        settings,
        "web-keyed",
        grant_types=["client_credentials", "authorization_code"],
        redirect_uris=["https://app.example/cb"],
        token_endpoint_auth_method="private_key_jwt",
        jwks=key_set(ec),
    )
    base = live_server.url
    issued = httpx.post(
        f"{base}/token", data=token_form(assertion(ec, client_id, base)), timeout=30
    )
    assert issued.status_code == 200, issued.text
    access = issued.json()["access_token"]

    def auth(endpoint: str) -> dict[str, str]:
        value = assertion(ec, client_id, f"{base}{endpoint}")
        return {"client_assertion_type": ASSERTION_TYPE, "client_assertion": value}

    introspected = httpx.post(
        f"{base}/introspect", data={"token": access, **auth("/introspect")}, timeout=30
    )
    assert introspected.status_code == 200 and introspected.json()["active"] is True
    pushed = httpx.post(
        f"{base}/par",
        data={
            "response_type": "code",
            "redirect_uri": "https://app.example/cb",
            "scope": "openid",
            "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            "code_challenge_method": "S256",
            **auth("/par"),
        },
        timeout=30,
    )
    assert pushed.status_code == 201, pushed.text
    revoked = httpx.post(f"{base}/revoke", data={"token": access, **auth("/revoke")}, timeout=30)
    assert revoked.status_code == 200, revoked.text
    after = httpx.post(
        f"{base}/introspect", data={"token": access, **auth("/introspect")}, timeout=30
    )
    assert after.json() == {"active": False}


class _KeySetServer(BaseHTTPRequestHandler):
    document: bytes = b"{}"
    fetches: ClassVar[list[float]] = []

    def do_GET(self) -> None:
        type(self).fetches.append(time.time())
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Cache-Control", "max-age=3600")
        self.end_headers()
        self.wfile.write(type(self).document)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def key_set_server() -> Iterator[tuple[str, type[_KeySetServer]]]:
    handler = type("Handler", (_KeySetServer,), {"document": b"{}", "fetches": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/jwks", handler
    finally:
        server.shutdown()


def test_jwks_uri_is_fetched_cached_and_refetched_for_a_new_kid(
    settings: Settings, port: int, key_set_server: tuple[str, type[_KeySetServer]]
) -> None:
    """Keys from the client's jwks_uri: fetched once and cached, refetched when an assertion
    names a kid it does not know (a rotation), at most once per 30 s cooldown."""
    uri, handler = key_set_server
    old, new = es256("old"), es256("new")
    handler.document = key_set(old).encode()
    clock = MovableClock()
    server = start_server(settings, port, clock)
    try:
        dev = replace(settings, allow_private_backchannel=True)
        client_id, _ = register_client(
            dev, "remote-keys", grant_types=["client_credentials"],
            token_endpoint_auth_method="private_key_jwt", jwks_uri=uri,
        )  # fmt: skip
        url = f"{server.url}/token"
        for _ in range(3):
            ok = httpx.post(url, data=token_form(assertion(old, client_id, url)), timeout=30)
            assert ok.status_code == 200, ok.text
        assert len(handler.fetches) == 1
        handler.document = key_set(old, new).encode()
        early = httpx.post(url, data=token_form(assertion(new, client_id, url)), timeout=30)
        assert early.status_code == 401  # within the cooldown the cached set stands
        clock.advance(31)
        rotated = httpx.post(url, data=token_form(assertion(new, client_id, url)), timeout=30)
        assert rotated.status_code == 200, rotated.text
        assert len(handler.fetches) == 2
    finally:
        server.stop()


@pytest.mark.usefixtures("live_server")
def test_registration_checks_the_keys(settings: Settings) -> None:
    ec = es256()
    private = json.dumps({"keys": [{**ec.key.as_dict(private=True), "kid": "k", "alg": "ES256"}]})
    no_alg = json.dumps({"keys": [{**ec.key.as_dict(private=False), "kid": "k"}]})
    refused = [
        {"token_endpoint_auth_method": "private_key_jwt"},
        {"token_endpoint_auth_method": "private_key_jwt", "jwks": private},
        {"token_endpoint_auth_method": "private_key_jwt", "jwks": no_alg},
        {"token_endpoint_auth_method": "private_key_jwt", "jwks": "not json"},
        {"token_endpoint_auth_method": "private_key_jwt", "jwks_uri": "http://example.com/jwks"},
        {"token_endpoint_auth_method": "private_key_jwt", "jwks_uri": "https://10.0.0.1/jwks"},
        {
            "token_endpoint_auth_method": "private_key_jwt",
            "jwks": key_set(ec),
            "jwks_uri": "https://keys.example/jwks",
        },
    ]
    for fields in refused:
        with pytest.raises(InvalidClientMetadata):
            register_client(
                settings, f"c-{secrets.token_hex(4)}", grant_types=["client_credentials"], **fields
            )


@pytest.mark.usefixtures("database_url")
def test_cli_registers_a_key_client_from_a_file_and_replaces_its_keys(
    migrated: Idp, tmp_path: Any
) -> None:
    first, second = tmp_path / "first.json", tmp_path / "second.json"
    first.write_text(key_set(es256("a")))
    second.write_text(key_set(es256("b")))
    created = migrated(
        "clients", "create", "--name", "Keyed", "--grant-type", "client_credentials",
        "--token-endpoint-auth-method", "private_key_jwt", "--jwks", str(first), "--json",
    ).json()  # fmt: skip
    assert "client_secret" not in created or created["client_secret"] is None
    assert created["token_endpoint_auth_method"] == "private_key_jwt"
    assert [k["kid"] for k in created["jwks"]["keys"]] == ["a"]
    updated = migrated(
        "clients", "update", created["client_id"], "--jwks", str(second), "--json"
    ).json()
    assert [k["kid"] for k in updated["jwks"]["keys"]] == ["b"]


def test_discovery_lists_private_key_jwt(live_server: LiveServer) -> None:
    metadata = httpx.get(f"{live_server.url}/.well-known/openid-configuration", timeout=10).json()
    assert "private_key_jwt" in metadata["token_endpoint_auth_methods_supported"]
    assert "private_key_jwt" in metadata["introspection_endpoint_auth_methods_supported"]
    assert metadata["token_endpoint_auth_signing_alg_values_supported"] == [
        "ES256",
        "HS256",
        "PS256",
        "RS256",
    ]


def test_authlib_client_authenticates_with_private_key_jwt(
    live_server: LiveServer, keyed: tuple[str, KeyPair, KeyPair]
) -> None:
    """authlib's PrivateKeyJWT (its defaults: RS256, no kid, an hour's lifetime) gets a token."""
    client_id, _, rsa = keyed
    url = f"{live_server.url}/token"
    pem = rsa.key.as_pem(private=True)
    with OAuth2Client(
        client_id, pem, token_endpoint_auth_method=PrivateKeyJWT(url), timeout=30
    ) as client:
        token = client.fetch_token(url, grant_type="client_credentials")
        assert token["token_type"] == "Bearer"
        assert client.fetch_token(url, grant_type="client_credentials")["access_token"]
