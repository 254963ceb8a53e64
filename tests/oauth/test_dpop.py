"""The DPoP proof checks (RFC 9449 section 4.3), the thumbprint (RFC 7638) and the nonces."""

from __future__ import annotations

import time

import pytest
from joserfc.jwk import JWKRegistry

from idp.oauth.dpop import (
    access_token_hash,
    check_proof,
    jwk_thumbprint,
    normalized_htu,
    only_proof,
)
from idp.oauth.dpop_nonce import DpopNonces, check_nonce
from idp.oauth.errors import InvalidDpopProof, UseDpopNonce
from tests.support.dpop import DpopKey, ath

URL = "https://idp.example.com/token"
ALGS = ("ES256", "RS256", "PS256", "EdDSA")


def check(proof: str, *, method: str = "POST", url: str = URL, **kw: object) -> object:
    options: dict[str, object] = {"now": time.time(), "max_age": 60, "leeway": 5, **kw}
    return check_proof(proof, method=method, url=url, **options)  # type: ignore[arg-type]


def refused(proof: str, words: str, **kw: object) -> None:
    with pytest.raises(InvalidDpopProof) as caught:
        check(proof, **kw)
    assert caught.value.error == "invalid_dpop_proof"
    assert words in caught.value.description


@pytest.mark.parametrize("alg", ALGS)
def test_a_proof_of_each_algorithm_is_accepted_with_its_thumbprint(alg: str) -> None:
    key = DpopKey(alg)
    proof = check(key.proof("POST", URL))
    assert proof.jkt == key.jkt  # type: ignore[attr-defined]


@pytest.mark.parametrize("alg", ALGS)
def test_thumbprint_agrees_with_joserfc(alg: str) -> None:
    key = DpopKey(alg)
    assert jwk_thumbprint(key.jwk) == JWKRegistry.import_key(key.jwk).thumbprint()


def test_the_rfc_7638_example_thumbprint() -> None:
    # RFC 7638 section 3.1: the example RSA key and its SHA-256 thumbprint.
    jwk = {
        "kty": "RSA",
        "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6"
        "tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-"
        "65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNL"
        "yrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJ"
        "zKnqDKgw",
        "e": "AQAB",
        "alg": "RS256",
        "kid": "2011-04-29",
    }
    assert jwk_thumbprint(jwk) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


def test_ath_is_the_base64url_sha256_of_the_token() -> None:
    assert access_token_hash("Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU") == (
        "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo"  # RFC 9449 section 7.1
    )
    assert ath("abc") == access_token_hash("abc")


def test_typ_must_be_dpop_jwt() -> None:
    key = DpopKey()
    refused(key.proof("POST", URL, header={"typ": "JWT"}), "typ")


@pytest.mark.parametrize("alg", ["none", "HS256", "ES384", "RS512"])
def test_other_algorithms_are_refused(alg: str) -> None:
    refused(DpopKey().proof("POST", URL, header={"alg": alg}), "alg")


def test_a_key_of_another_type_than_alg_says_is_refused() -> None:
    key = DpopKey("ES256")
    refused(key.proof("POST", URL, header={"alg": "RS256"}), "not a key for RS256")


def test_a_private_key_in_the_header_is_refused() -> None:
    key = DpopKey()
    leaked = {**key.jwk, "d": "AAAA"}
    refused(key.proof("POST", URL, header={"jwk": leaked}), "private key")


def test_a_missing_jwk_is_refused() -> None:
    refused(DpopKey().proof("POST", URL, header={"jwk": None}), "no jwk")


def test_a_signature_of_another_key_is_refused() -> None:
    signer, other = DpopKey(), DpopKey()
    refused(signer.proof("POST", URL, header={"jwk": other.jwk}), "signature")


def test_a_tampered_payload_is_refused() -> None:
    head, _, sig = DpopKey().proof("POST", URL).split(".")
    other_body = DpopKey().proof("POST", URL).split(".")[1]
    refused(f"{head}.{other_body}.{sig}", "signature")


@pytest.mark.parametrize("garbage", ["", "a.b", "a.b.c.d", "x" * 9000, "ey.ey.ey"])
def test_garbage_is_refused(garbage: str) -> None:
    with pytest.raises(InvalidDpopProof):
        check(garbage)


@pytest.mark.parametrize("claim", ["jti", "htm", "htu", "iat"])
def test_each_required_claim_is_required(claim: str) -> None:
    with pytest.raises(InvalidDpopProof):
        check(DpopKey().proof("POST", URL, drop=(claim,)))


def test_htm_must_be_the_request_method() -> None:
    refused(DpopKey().proof("GET", URL), "htm")
    refused(DpopKey().proof("post", URL), "htm")


@pytest.mark.parametrize(
    "htu",
    [
        "https://IDP.example.com/token",
        "HTTPS://idp.example.com/token",
        "https://idp.example.com:443/token",
        "https://idp.example.com/token?x=1",
        "https://idp.example.com/token#frag",
    ],
)
def test_htu_is_compared_after_normalisation(htu: str) -> None:
    check(DpopKey().proof("POST", htu))


@pytest.mark.parametrize(
    "htu",
    [
        "https://idp.example.com/token/",
        "https://idp.example.com/Token",
        "http://idp.example.com/token",
        "https://idp.example.com:8443/token",
        "https://other.example.com/token",
        "/token",
    ],
)
def test_htu_of_another_uri_is_refused(htu: str) -> None:
    refused(DpopKey().proof("POST", htu), "htu")


def test_normalized_htu() -> None:
    assert normalized_htu("HTTP://Example.COM:80") == "http://example.com/"
    assert normalized_htu("https://[::1]:8443/a?b#c") == "https://[::1]:8443/a"
    assert normalized_htu("ftp://example.com/") is None
    assert normalized_htu("https://example.com:99999/") is None


def test_iat_window() -> None:
    key = DpopKey()
    now = time.time()
    check(key.proof("POST", URL, iat=now - 64), now=now)
    refused(key.proof("POST", URL, iat=now - 66), "iat", now=now)
    check(key.proof("POST", URL, iat=now + 4), now=now)
    refused(key.proof("POST", URL, iat=now + 7), "iat", now=now)
    refused(key.proof("POST", URL, claims={"iat": "soon"}), "iat")


def test_ath_is_checked_when_a_token_is_presented() -> None:
    key = DpopKey()
    check(key.proof("GET", URL, access_token="tok"), method="GET", access_token="tok")
    refused(key.proof("GET", URL), "ath", method="GET", access_token="tok")
    refused(key.proof("GET", URL, access_token="other"), "ath", method="GET", access_token="tok")


def test_more_than_one_dpop_header_is_refused() -> None:
    assert only_proof([]) is None
    assert only_proof(["a"]) == "a"
    with pytest.raises(InvalidDpopProof):
        only_proof(["a", "b"])


def test_nonces_rotate_and_the_previous_one_is_still_accepted() -> None:
    nonces = DpopNonces(b"k" * 32, 300)
    start = 1_000_200.0
    first = nonces.current(start)
    assert nonces.accepts(first, start)
    later = start + 300
    assert nonces.current(later) != first
    assert nonces.accepts(first, later)
    assert not nonces.accepts(first, start + 600)
    assert not nonces.accepts(None, start) and not nonces.accepts("x", start)
    assert not DpopNonces(b"j" * 32, 300).accepts(first, start)


def test_check_nonce_answers_a_fresh_nonce() -> None:
    nonces = DpopNonces(b"k" * 32, 300)
    now = time.time()
    key = DpopKey()
    without = check(key.proof("POST", URL))
    with pytest.raises(UseDpopNonce) as caught:
        check_nonce(without, nonces, now)  # type: ignore[arg-type]
    assert caught.value.error == "use_dpop_nonce"
    assert caught.value.headers["DPoP-Nonce"] == nonces.current(now)
    good = check(key.proof("POST", URL, nonce=nonces.current(now)))
    check_nonce(good, nonces, now)  # type: ignore[arg-type]
