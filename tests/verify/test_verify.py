"""idp.verify.TokenVerifier: tokens of the real IdP, hostile hand-made tokens, key caching.

Keys come over real HTTP: from the IdP itself (live_server, both stores) or from a counting
JWKS server (tests/support/verify.py). Time is a hand-moved clock wherever the cache or the
claims' times matter.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from joserfc.jwk import ECKey
from joserfc.jws import JWSRegistry
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from idp.verify import (
    InsufficientScope,
    InvalidToken,
    KeysUnavailable,
    TokenVerifier,
    VerifiedToken,
)
from idp.verify.fetch import FetchError, jwks_uri_from
from tests.support.clocks import FakeClock
from tests.support.processes import idp_json
from tests.support.server import LiveServer, free_port
from tests.support.verify import (
    AUDIENCE,
    ISSUER,
    START,
    JwksServer,
    Signer,
    b64,
    b64json,
    good_claims,
    idp_token,
    jwks_server,
    serving,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def rsa() -> Signer:
    return Signer.rsa("rsa-1")


@pytest.fixture(scope="module")
def ec() -> Signer:
    return Signer.ec("ec-1")


@pytest.fixture(scope="module")
def stranger() -> Signer:
    """Another issuer's RSA key."""
    return Signer.rsa("stranger-1")


@pytest.fixture
def server(rsa: Signer, ec: Signer) -> Iterator[JwksServer]:
    with jwks_server([rsa.jwk(), ec.jwk()]) as running:
        yield running


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def verifier_for(server: JwksServer, clock: FakeClock, **options: Any) -> TokenVerifier:
    return TokenVerifier(ISSUER, AUDIENCE, jwks_uri=server.jwks_uri, clock=clock, **options)


@pytest.fixture
def verifier(server: JwksServer, clock: FakeClock) -> TokenVerifier:
    return verifier_for(server, clock)


def b64decode_segment(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def refused(verifier: TokenVerifier, token: str | bytes, says: str) -> InvalidToken:
    with pytest.raises(InvalidToken) as caught:
        verifier.verify(token)
    assert caught.value.error == "invalid_token"
    assert caught.value.status == 401
    assert says in caught.value.description
    return caught.value


# --- Tokens of our own IdP ----------------------------------------------------------------


@pytest.mark.parametrize("alg", ["RS256", "ES256"])
def test_tokens_of_our_idp_verify_through_discovery(live_server: LiveServer, alg: str) -> None:
    token = idp_token(live_server, alg)
    verifier = TokenVerifier(live_server.url, AUDIENCE)

    verified = verifier.verify(token, scopes=["read"])

    assert isinstance(verified, VerifiedToken)
    assert verifier.jwks_uri == f"{live_server.url}/jwks.json"
    assert verified.alg == alg
    assert verified.issuer == live_server.url
    assert verified.subject == verified.client_id == verified.claims["client_id"]
    assert verified.scopes == ("read", "write")
    assert verified.has_scope("read", "write") and not verified.has_scope("admin")
    assert verified.audience == (AUDIENCE,)
    assert verified.expires_at == verified.issued_at + 600
    assert abs(verified.issued_at - time.time()) < 60
    assert verified.jti == verified.claims["jti"]
    with pytest.raises(TypeError):
        verified.claims["sub"] = "someone else"  # type: ignore[index]

    assert asyncio.run(verifier.averify(token)).jti == verified.jti
    with pytest.raises(InsufficientScope) as caught:
        verifier.verify(token, scopes=["read", "admin"])
    assert (caught.value.error, caught.value.status) == ("insufficient_scope", 403)
    assert caught.value.required == ("read", "admin")

    header, payload, signature = token.split(".")
    forged = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    forged["scope"] = "read write admin"
    refused(verifier, f"{header}.{b64json(forged)}.{signature}", "signature")
    refused(TokenVerifier(live_server.url, "https://other.example.com"), token, "audience")
    refused(
        TokenVerifier(live_server.url + "/", AUDIENCE, jwks_uri=verifier.jwks_uri), token, "issuer"
    )


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting: {what}"
        time.sleep(0.1)


def test_rotation_needs_no_fetch_and_revocation_ends_at_the_next_one(
    live_server: LiveServer, env: dict[str, str], tmp_path: Path
) -> None:
    clock = FakeClock(time.time())  # frozen: an unknown kid could not trigger a fetch
    verifier = TokenVerifier(live_server.url, AUDIENCE, clock=clock)
    before = verifier.verify(idp_token(live_server, "ES256"))

    # The next key was published before it signs, so the cached JWKS already holds it.
    rotated = idp_json(["keys", "rotate", "--alg", "ES256"], env, tmp_path)
    assert rotated["retired_kid"] == before.kid
    tokens: list[str] = []

    def signed_by_new_key() -> bool:
        tokens.append(idp_token(live_server, "ES256"))
        return json.loads(b64decode_segment(tokens[-1].split(".")[0]))["kid"] != before.kid

    wait_until(signed_by_new_key, "tokens signed by the new key")
    after = verifier.verify(tokens[-1])
    assert after.kid == rotated["active_kid"] != before.kid
    assert verifier.verify(idp_token(live_server, "ES256")).kid == after.kid

    # A revoked key leaves the JWKS; once the cached copy is stale, its tokens fail.
    idp_json(["keys", "revoke", after.kid], env, tmp_path)
    wait_until(
        lambda: after.kid not in httpx.get(f"{live_server.url}/jwks.json").text, "revocation"
    )
    assert verifier.verify(tokens[-1]).kid == after.kid  # the cached keys are still fresh
    clock.advance(300)  # IDP_JWKS_MAX_AGE
    refused(verifier, tokens[-1], "unknown key")


def test_a_discovery_document_naming_another_issuer_gives_no_keys(rsa: Signer) -> None:
    with jwks_server([rsa.jwk()], issuer="https://evil.example.com") as server:
        verifier = TokenVerifier(server.url, AUDIENCE, clock=FakeClock())
        with pytest.raises(KeysUnavailable):
            verifier.verify(rsa.token())
        assert server.hits["discovery"] == 1
        assert server.hits["/jwks.json"] == 0
        assert verifier.jwks_uri is None


@pytest.mark.parametrize(
    "jwks_uri", [None, 7, "ftp://127.0.0.1/jwks.json", "http://", "http://[::1/jwks.json"]
)
def test_a_discovery_document_without_a_usable_jwks_uri_gives_no_keys(
    rsa: Signer, jwks_uri: Any
) -> None:
    document: dict[str, Any] = {}

    async def discovery(request: Request) -> JSONResponse:
        return JSONResponse(document)

    routes = [Route("/.well-known/openid-configuration", discovery)]
    with jwks_server([rsa.jwk()]) as keys, serving(Starlette(routes=routes)) as url:
        document.update(issuer=url, jwks_uri=keys.jwks_uri)
        token = rsa.token(good_claims(iss=url))
        assert TokenVerifier(url, AUDIENCE, clock=FakeClock()).verify(token).kid == "rsa-1"
        document["jwks_uri"] = jwks_uri
        verifier = TokenVerifier(url, AUDIENCE, clock=FakeClock())
        with pytest.raises(KeysUnavailable):
            verifier.verify(token)
        assert verifier.jwks_uri is None


def test_an_https_issuer_needs_an_https_jwks_uri() -> None:
    document = {"issuer": ISSUER, "jwks_uri": "http://idp.example.com/jwks.json"}
    with pytest.raises(FetchError, match="not https"):
        jwks_uri_from(document, ISSUER)
    assert jwks_uri_from({**document, "jwks_uri": ISSUER + "/k"}, ISSUER) == ISSUER + "/k"


def test_a_token_must_be_a_string(verifier: TokenVerifier) -> None:
    for token in (None, 7, ["a.b.c"]):
        refused(verifier, token, "not a string")  # type: ignore[arg-type]


def test_a_given_jwks_uri_skips_discovery(
    server: JwksServer, verifier: TokenVerifier, rsa: Signer
) -> None:
    assert verifier.verify(rsa.token()).subject == "client-1"
    assert server.hits["discovery"] == 0
    assert server.hits["/jwks.json"] == 1


# --- Good tokens and the edges of validity ------------------------------------------------


def test_both_algorithms_and_the_token_shapes_rfc9068_allows(
    verifier: TokenVerifier, rsa: Signer, ec: Signer
) -> None:
    assert verifier.verify(rsa.token()).alg == "RS256"
    assert verifier.verify(ec.token()).alg == "ES256"
    assert verifier.verify(rsa.token().encode()).kid == "rsa-1"
    several = good_claims(aud=["https://other.example.com", AUDIENCE])
    assert verifier.verify(rsa.token(several)).audience == ("https://other.example.com", AUDIENCE)
    assert verifier.verify(rsa.token(typ="application/AT+JWT")).subject == "client-1"
    assert verifier.verify(rsa.token(good_claims(scope=None))).scopes == ()
    assert verifier.verify(rsa.token(good_claims(nbf=int(START)))).subject == "client-1"


def test_times_are_checked_with_the_leeway(
    verifier: TokenVerifier, clock: FakeClock, rsa: Signer
) -> None:
    token = rsa.token()  # iat START, exp START + 600, leeway 30
    clock.now = START + 629
    assert verifier.verify(token).jti == "jti-1"
    clock.now = START + 630
    refused(verifier, token, "expired")
    clock.now = START - 30
    assert verifier.verify(token).jti == "jti-1"
    clock.now = START - 31
    refused(verifier, token, "issued in the future")
    clock.now = START
    refused(verifier, rsa.token(good_claims(nbf=int(START) + 31)), "not valid yet")
    assert verifier.verify(rsa.token(good_claims(nbf=int(START) + 30))).jti == "jti-1"


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        ({"exp": None}, "exp"),
        ({"exp": "1900000000"}, "exp"),
        ({"exp": True}, "exp"),
        ({"iat": None}, "iat"),
        ({"nbf": "soon"}, "not valid yet"),
        ({"iss": None}, "issuer"),
        ({"iss": "https://idp.example.com/"}, "issuer"),
        ({"iss": "https://IDP.example.com"}, "issuer"),
        ({"aud": "https://other.example.com"}, "audience"),
        ({"aud": ["https://other.example.com"]}, "audience"),
        ({"aud": []}, "aud"),
        ({"aud": None}, "aud"),
        ({"aud": [AUDIENCE, 7]}, "aud"),
        ({"sub": None}, "sub"),
        ({"client_id": ""}, "client_id"),
        ({"jti": 5}, "jti"),
        ({"scope": ["read"]}, "scope"),
    ],
)
def test_claims_that_break_rfc9068_are_refused(
    verifier: TokenVerifier, rsa: Signer, changes: dict[str, Any], says: str
) -> None:
    refused(verifier, rsa.token(good_claims(**changes)), says)


# --- Hostile tokens -------------------------------------------------------------------------


def unsigned(header: dict[str, Any], claims: dict[str, Any], signature: bytes = b"") -> str:
    return f"{b64json(header)}.{b64json(claims)}.{b64(signature)}"


def test_alg_none_is_refused(verifier: TokenVerifier, server: JwksServer) -> None:
    header = {"alg": "none", "typ": "at+jwt", "kid": "rsa-1"}
    refused(verifier, unsigned(header, good_claims()), "not a compact JWS")
    refused(verifier, unsigned(header, good_claims(), b"x"), "algorithm is not accepted")
    assert server.hits["/jwks.json"] == 0
    with pytest.raises(ValueError, match="none"):
        TokenVerifier(ISSUER, AUDIENCE, algorithms=["RS256", "none"])
    with pytest.raises(ValueError, match="HS256"):
        TokenVerifier(ISSUER, AUDIENCE, algorithms=["HS256"])


def test_hs256_signed_with_the_rsa_public_key_is_refused(
    verifier: TokenVerifier, rsa: Signer
) -> None:
    for secret in (rsa.key.as_pem(private=False), json.dumps(rsa.jwk()).encode()):
        header = b64json({"alg": "HS256", "typ": "at+jwt", "kid": "rsa-1"})
        payload = b64json(good_claims())
        mac = hmac.new(secret, f"{header}.{payload}".encode(), hashlib.sha256).digest()
        refused(verifier, f"{header}.{payload}.{b64(mac)}", "algorithm is not accepted")
    mac_header = {"alg": "RS256", "typ": "at+jwt", "kid": "rsa-1"}
    signing_input = f"{b64json(mac_header)}.{b64json(good_claims())}".encode()
    mac = hmac.new(rsa.key.as_pem(private=False), signing_input, hashlib.sha256).digest()
    refused(verifier, f"{signing_input.decode()}.{b64(mac)}", "signature")


def test_keys_of_another_issuer_are_refused(
    verifier: TokenVerifier, server: JwksServer, clock: FakeClock, stranger: Signer
) -> None:
    # Signed by a stranger, claiming our kid: the signature fails under our key.
    impostor = Signer(stranger.key, "rsa-1", "RS256")
    refused(verifier, impostor.token(), "signature")
    # Signed by a stranger under its own kid: unknown here, even after a refetch.
    clock.advance(31)
    refused(verifier, stranger.token(), "unknown key")
    assert server.hits["/jwks.json"] == 2


def test_the_keys_alg_decides_not_the_header(
    verifier: TokenVerifier, rsa: Signer, ec: Signer
) -> None:
    # An RS256 signature under the ES256 key's kid, and the reverse.
    refused(verifier, Signer(rsa.key, "ec-1", "RS256").token(), "not its key's algorithm")
    refused(verifier, Signer(ec.key, "rsa-1", "ES256").token(), "not its key's algorithm")
    only_es256 = TokenVerifier(
        ISSUER, AUDIENCE, algorithms=["ES256"], jwks_uri=verifier.jwks_uri, clock=FakeClock()
    )
    refused(only_es256, rsa.token(), "algorithm is not accepted")
    assert only_es256.verify(ec.token()).alg == "ES256"


def test_typ_must_say_access_token(verifier: TokenVerifier, rsa: Signer) -> None:
    for typ in ("JWT", "jwt", "at+jwt2", None, 1):
        refused(verifier, rsa.token(typ=typ), "typ at+jwt")


def test_a_kid_is_required(verifier: TokenVerifier, rsa: Signer) -> None:
    refused(verifier, rsa.token(kid=None), "no kid")
    refused(verifier, rsa.token(kid=""), "no kid")
    refused(verifier, rsa.token(kid=["rsa-1"]), "no kid")


def test_keys_named_by_the_token_are_refused_and_never_fetched(
    verifier: TokenVerifier, server: JwksServer, rsa: Signer, stranger: Signer
) -> None:
    with jwks_server([stranger.jwk()]) as elsewhere:
        for name, value in (("jku", elsewhere.jwks_uri), ("x5u", f"{elsewhere.url}/cert.pem")):
            refused(verifier, stranger.token(**{name: value}), "names its own key")
            refused(verifier, rsa.token(**{name: value}), "names its own key")
        refused(verifier, stranger.token(jwk=stranger.jwk()), "names its own key")
        refused(
            verifier, Signer(stranger.key, "rsa-1", "RS256").token(jwk=stranger.jwk()), "own key"
        )
        refused(verifier, stranger.token(x5c=["MIIB"]), "names its own key")
        assert sum(elsewhere.hits.values()) == 0
    assert server.hits["other"] == 0


def test_critical_header_extensions_are_refused(verifier: TokenVerifier, rsa: Signer) -> None:
    refused(verifier, rsa.token(crit=["exp"], exp=1), "critical")
    refused(verifier, rsa.token(crit=[]), "critical")


def test_a_huge_token_is_refused_before_it_is_read(
    verifier: TokenVerifier, server: JwksServer, rsa: Signer
) -> None:
    header = b64json({"alg": "RS256", "typ": "at+jwt", "kid": "rsa-1"})
    huge = f"{header}.{'A' * 1024 * 1024}.{'A' * 342}"
    refused(verifier, huge, "too large")
    refused(verifier, huge.encode(), "too large")
    big_but_signed = rsa.token(good_claims(padding="x" * 9000))
    refused(verifier, big_but_signed, "too large")
    assert server.hits["/jwks.json"] == 0
    roomy = verifier_for(server, FakeClock(), max_token_bytes=16 * 1024)
    assert roomy.verify(big_but_signed).claims["padding"] == "x" * 9000


def test_malformed_compact_tokens_are_refused(verifier: TokenVerifier, rsa: Signer) -> None:
    header, payload, signature = rsa.token().split(".")
    for bad in (
        "",
        "abc",
        f"{header}.{payload}",
        f"{header}.{payload}.{signature}.extra",
        f"{header}.{payload}.{signature}.a.b",
        f"{header}.{payload}.{signature}=",
        f"{header}.{payload}.{signature} ",
        f"{header}.{payload}.{signature[:-2]}+/",
        f"{header}..{signature}",
        f"{header}.{payload}.{signature}\n",
        '{"alg":"RS256"}.' + f"{payload}.{signature}",
    ):
        refused(verifier, bad, "not a compact JWS")
    refused(verifier, f"{header}.{payload}.{signature}AAA", "base64url")  # 4n+1 characters
    refused(verifier, f"A.{payload}.{signature}", "base64url")
    refused(verifier, f"{header}.{payload}.{signature}A", "signature")
    refused(verifier, f"{header}.{payload}.{signature}".encode() + b"\xff", "compact JWS")
    refused(verifier, f"{b64(b'[1, 2]')}.{payload}.{signature}", "header is not a JSON object")
    refused(verifier, f"{b64(b'{not json')}.{payload}.{signature}", "header is not a JSON object")
    not_utf8 = b64(bytes([0xFF, 0xFE]))
    refused(verifier, f"{not_utf8}.{payload}.{signature}", "header is not a JSON object")


def test_nan_and_infinity_are_not_json(verifier: TokenVerifier, rsa: Signer) -> None:
    header = b64json({"alg": "RS256", "typ": "at+jwt", "kid": "rsa-1"})
    for literal in ("NaN", "Infinity", "-Infinity"):
        raw = json.dumps(good_claims(exp=None))[:-1] + f', "exp": {literal}}}'
        signing_input = f"{header}.{b64(raw.encode())}"
        signature = JWSRegistry.algorithms["RS256"].sign(signing_input.encode(), rsa.key)
        refused(verifier, f"{signing_input}.{b64(signature)}", "payload is not a JSON object")


@pytest.mark.filterwarnings("ignore::joserfc.errors.SecurityWarning")  # the 1024-bit key
def test_unusable_keys_in_the_jwks_are_skipped(rsa: Signer, ec: Signer) -> None:
    weak = Signer.rsa("weak-1", bits=1024)
    no_alg = Signer.rsa("no-alg")
    jwks = [
        weak.jwk(),
        {k: v for k, v in no_alg.jwk().items() if k != "alg"},
        Signer(ec.key, "enc-1", "ES256").jwk(use="enc"),
        Signer(ec.key, "ops-1", "ES256").jwk(key_ops=["sign"]),
        Signer(ec.key, "wrongtype-1", "RS256").jwk(),
        Signer(rsa.key, "hs-1", "HS256").jwk(),
        Signer(rsa.key, "dup", "RS256").jwk(),
        Signer(ec.key, "dup", "ES256").jwk(),
        "not a key",
        rsa.jwk(),
    ]
    with jwks_server(jwks) as server:
        verifier = verifier_for(server, FakeClock())
        assert verifier.verify(rsa.token()).kid == "rsa-1"
        refused(verifier, weak.token(), "unknown key")
        refused(verifier, no_alg.token(), "unknown key")
        refused(verifier, Signer(ec.key, "enc-1", "ES256").token(), "unknown key")
        refused(verifier, Signer(ec.key, "ops-1", "ES256").token(), "unknown key")
        refused(verifier, Signer(rsa.key, "dup", "RS256").token(), "unknown key")
        refused(verifier, Signer(ec.key, "dup", "ES256").token(), "unknown key")


def test_error_descriptions_never_repeat_the_token(verifier: TokenVerifier, rsa: Signer) -> None:
    token = rsa.token(good_claims(aud="https://secret-audience.example.com"))
    error = refused(verifier, token, "audience")
    assert "secret-audience" not in error.description
    assert token not in str(error)


# --- The key cache --------------------------------------------------------------------------


def test_max_age_is_honoured(server: JwksServer, clock: FakeClock, rsa: Signer) -> None:
    server.max_age = 120
    verifier = verifier_for(server, clock)
    token = rsa.token(good_claims(exp=int(START) + 10_000))
    verifier.verify(token)
    clock.advance(119)
    verifier.verify(token)
    assert server.hits["/jwks.json"] == 1
    clock.advance(1)
    verifier.verify(token)
    assert server.hits["/jwks.json"] == 2


@pytest.mark.parametrize(
    ("cache_control", "fresh_for"),
    [
        ("public, max-age=5", 60),  # below min_cache_ttl
        ("public, max-age=100000", 3600),  # above max_cache_ttl
        ("no-store", 60),
        (None, 60),  # no max-age: the minimum
        ("public, max-age=600", 600),
    ],
)
def test_max_age_is_clamped_to_the_bounds(
    server: JwksServer, clock: FakeClock, rsa: Signer, cache_control: str | None, fresh_for: int
) -> None:
    server.cache_control = cache_control or ""
    verifier = verifier_for(server, clock, min_cache_ttl=60, max_cache_ttl=3600)
    token = rsa.token(good_claims(exp=int(START) + 10_000, iat=int(START)))
    verifier.verify(token)
    clock.advance(fresh_for - 0.5)
    verifier.verify(token)
    assert server.hits["/jwks.json"] == 1
    clock.advance(0.5)
    verifier.verify(token)
    assert server.hits["/jwks.json"] == 2


def test_unknown_kid_refetches_at_most_once_per_cooldown(
    server: JwksServer, clock: FakeClock, rsa: Signer
) -> None:
    verifier = verifier_for(server, clock)
    newcomer = Signer.ec("ec-2")
    verifier.verify(rsa.token())
    server.keys.append(newcomer.jwk())
    for _ in range(20):
        clock.advance(1)
        refused(verifier, newcomer.token(good_claims(now=clock.now)), "unknown key")
    assert server.hits["/jwks.json"] == 1  # 20 s after the fetch: still cooling down
    clock.advance(10)
    assert verifier.verify(newcomer.token(good_claims(now=clock.now))).kid == "ec-2"
    assert server.hits["/jwks.json"] == 2
    stranger = Signer.ec("ec-9")
    for _ in range(100):
        refused(verifier, stranger.token(good_claims(now=clock.now)), "unknown key")
    clock.advance(30)
    refused(verifier, stranger.token(good_claims(now=clock.now)), "unknown key")
    assert server.hits["/jwks.json"] == 3


def test_a_key_gone_from_the_jwks_stops_verifying_at_the_next_fetch(
    server: JwksServer, clock: FakeClock, rsa: Signer, ec: Signer
) -> None:
    verifier = verifier_for(server, clock)
    token = rsa.token(good_claims(exp=int(START) + 10_000))
    verifier.verify(token)
    server.keys = [ec.jwk()]
    clock.advance(300)
    refused(verifier, token, "unknown key")


def test_unknown_kid_under_200_concurrent_verifications_fetches_once(
    server: JwksServer, clock: FakeClock, rsa: Signer
) -> None:
    verifier = verifier_for(server, clock)
    newcomer = Signer.ec("ec-2")

    async def scenario() -> list[VerifiedToken]:
        await verifier.averify(rsa.token())
        server.keys.append(newcomer.jwk())
        server.delay = 0.3  # every waiter arrives while the one fetch is in flight
        clock.advance(31)
        token = newcomer.token(good_claims(now=clock.now))
        return await asyncio.gather(*(verifier.averify(token) for _ in range(200)))

    results = asyncio.run(scenario())
    assert len(results) == 200 and all(r.kid == "ec-2" for r in results)
    assert server.hits["/jwks.json"] == 2


def test_blocking_verifications_share_one_fetch_too(
    server: JwksServer, clock: FakeClock, rsa: Signer
) -> None:
    verifier = verifier_for(server, clock)
    server.delay = 0.3
    token = rsa.token()
    results: list[str] = []
    barrier = threading.Barrier(40)

    def work() -> None:
        barrier.wait()
        results.append(verifier.verify(token).kid)

    threads = [threading.Thread(target=work) for _ in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert results == ["rsa-1"] * 40
    assert server.hits["/jwks.json"] == 1


def test_stale_keys_serve_while_the_idp_is_down_then_stop(
    server: JwksServer, clock: FakeClock, rsa: Signer, caplog: pytest.LogCaptureFixture
) -> None:
    verifier = verifier_for(server, clock, stale_if_error=3600)  # max-age 300
    token = rsa.token(good_claims(exp=int(START) + 100_000))
    verifier.verify(token)
    server.failing = True
    caplog.set_level(logging.WARNING, logger="idp.verify")

    clock.advance(300)
    assert verifier.verify(token).kid == "rsa-1"
    assert server.hits["/jwks.json"] == 2
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "serving the cached keys" in warnings[0].getMessage()
    assert token not in caplog.text
    clock.advance(29)
    assert verifier.verify(token).kid == "rsa-1"
    assert server.hits["/jwks.json"] == 2  # failed fetches are retried once per cooldown
    clock.advance(1)
    assert verifier.verify(token).kid == "rsa-1"
    assert server.hits["/jwks.json"] == 3

    clock.now = START + 300 + 3600 - 1
    assert asyncio.run(verifier.averify(token)).kid == "rsa-1"
    clock.now = START + 300 + 3600
    with pytest.raises(KeysUnavailable) as caught:
        verifier.verify(token)
    assert (caught.value.error, caught.value.status) == ("temporarily_unavailable", 503)
    assert token not in caplog.text

    server.failing = False
    clock.advance(30)
    assert verifier.verify(token).kid == "rsa-1"


def test_stale_keys_serve_when_the_idp_stops_answering_at_all(
    rsa: Signer, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    with jwks_server([rsa.jwk()], max_age=60) as server:
        verifier = verifier_for(server, clock, stale_if_error=600, http_timeout=2)
        token = rsa.token(good_claims(exp=int(START) + 100_000))
        asyncio.run(verifier.aprefetch())
    caplog.set_level(logging.WARNING, logger="idp.verify")
    clock.advance(60)
    assert asyncio.run(verifier.averify(token)).kid == "rsa-1"
    assert "ConnectError" in caplog.text and "serving the cached keys" in caplog.text
    clock.advance(600)
    with pytest.raises(KeysUnavailable):
        asyncio.run(verifier.averify(token))
    assert token not in caplog.text


def test_no_keys_at_all_when_the_idp_never_answered(rsa: Signer) -> None:
    verifier = TokenVerifier(
        ISSUER, AUDIENCE, jwks_uri=f"http://127.0.0.1:{free_port()}/jwks.json", http_timeout=2
    )
    with pytest.raises(KeysUnavailable):
        verifier.verify(rsa.token(good_claims(now=time.time())))
    with pytest.raises(KeysUnavailable):
        verifier.prefetch()


def test_prefetch_loads_the_keys(server: JwksServer, clock: FakeClock, rsa: Signer) -> None:
    verifier = verifier_for(server, clock)
    asyncio.run(verifier.aprefetch())
    verifier.verify(rsa.token())
    assert server.hits["/jwks.json"] == 1


# --- Import isolation -----------------------------------------------------------------------

ISOLATED = r"""
import importlib.abc, sys

BLOCKED = ("starlette", "asyncpg", "argon2", "granian", "uvicorn")

class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        top = name.split(".")[0]
        if top in BLOCKED:
            raise ImportError(f"blocked: {name}")
        if top == "idp" and name != "idp" and not name.startswith("idp.verify"):
            raise ImportError(f"blocked: {name}")
        return None

sys.meta_path.insert(0, Block())
try:
    import starlette
except ImportError:
    pass
else:
    raise SystemExit("the import blocker does not work")

import idp.verify
try:
    import idp.verify.starlette
except ImportError:
    pass
else:
    raise SystemExit("idp.verify.starlette imported without starlette")

issuer, audience, jwks_uri, token = sys.argv[1:5]
verifier = idp.verify.TokenVerifier(issuer, audience, jwks_uri=jwks_uri)
print(verifier.verify(token).subject)
loaded = sorted(
    name for name in sys.modules
    if name.split(".")[0] in BLOCKED
    or (name.startswith("idp.") and not name.startswith("idp.verify"))
)
print(loaded)
"""


def test_the_verifier_imports_without_the_idp_server_dependencies(
    server: JwksServer, rsa: Signer
) -> None:
    token = rsa.token(good_claims(now=time.time()))
    result = subprocess.run(
        [sys.executable, "-c", ISOLATED, ISSUER, AUDIENCE, server.jwks_uri, token],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["client-1", "[]"]


def test_other_asymmetric_algorithms_verify_when_accepted(rsa: Signer) -> None:
    ps256 = Signer(rsa.key, "ps-1", "PS256")
    es384 = Signer(ECKey.generate_key("P-384", private=True), "es384-1", "ES384")
    with jwks_server([ps256.jwk(), es384.jwk()]) as server:
        verifier = verifier_for(server, FakeClock(), algorithms=["PS256", "ES384"])
        assert verifier.verify(ps256.token()).alg == "PS256"
        assert verifier.verify(es384.token()).alg == "ES384"
        refused(verifier, Signer(rsa.key, "ps-1", "RS256").token(), "not accepted")


def test_an_ecdsa_signature_must_be_r_and_s_of_fixed_length(
    verifier: TokenVerifier, ec: Signer
) -> None:
    header, payload, signature = ec.token().split(".")
    raw = base64.urlsafe_b64decode(signature + "==")
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    refused(verifier, f"{header}.{payload}.{b64(der)}", "signature")
    refused(verifier, f"{header}.{payload}.{b64(raw[:63])}", "signature")
    refused(verifier, f"{header}.{payload}.{b64(bytes(64))}", "signature")
    assert verifier.verify(f"{header}.{payload}.{b64(raw)}").alg == "ES256"
    # A signature whose S starts with a zero byte still verifies with that byte dropped,
    # unless the length is checked: the encoding must be the one fixed-length form.
    signing_input = f"{header}.{payload}".encode()
    for _ in range(20_000):
        raw = JWSRegistry.algorithms["ES256"].sign(signing_input, ec.key)
        if raw[32] == 0:
            break
    assert raw[32] == 0
    assert verifier.verify(f"{header}.{payload}.{b64(raw)}").alg == "ES256"
    refused(verifier, f"{header}.{payload}.{b64(raw[:32] + raw[33:])}", "signature")
