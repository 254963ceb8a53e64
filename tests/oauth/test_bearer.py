"""Bearer token checks (RFC 6750, RFC 9068 section 4) with real keys, no server needed."""

from __future__ import annotations

from typing import Any

import pytest
from joserfc import jwt

from idp.http.bearer import bearer_refusal
from idp.keyring.material import new_key_record, unseal
from idp.keyring.ring import KeyRing
from idp.oauth.bearer import bearer_token, require_scope, verify_access_token
from idp.store.base import KeyRecord
from idp.verify.errors import InsufficientScope, InvalidToken, MissingToken

ISSUER = "https://idp.example"
AUDIENCE = "https://idp.example/admin"
NOW = 1_700_000_000
KEK = b"k" * 32


@pytest.fixture(scope="module")
def records() -> list[KeyRecord]:
    return [
        new_key_record("ES256", 2048, KEK, "active", NOW - 100),
        new_key_record("ES256", 2048, KEK, "next", NOW - 100),
        new_key_record("RS256", 2048, KEK, "active", NOW - 100),
    ]


@pytest.fixture(scope="module")
def ring(records: list[KeyRecord]) -> KeyRing:
    return KeyRing.build(records, 1, KEK)


def claims(**changes: Any) -> dict[str, Any]:
    base = {
        "iss": ISSUER,
        "sub": "c1",
        "aud": AUDIENCE,
        "exp": NOW + 300,
        "iat": NOW,
        "jti": "j1",
        "client_id": "c1",
        "scope": "idp:admin read",
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def verify(ring: KeyRing, token: str, now: float = NOW) -> Any:
    return verify_access_token(
        token, ring.verification, issuer=ISSUER, audience=AUDIENCE, now=now, leeway=30
    )


@pytest.mark.parametrize("alg", ["ES256", "RS256"])
def test_a_token_signed_by_the_ring_verifies(ring: KeyRing, alg: str) -> None:
    verified = verify(ring, ring.sign(alg, claims(), "at+jwt", NOW))
    assert (verified.client_id, verified.scopes, verified.jti) == (
        "c1",
        ("idp:admin", "read"),
        "j1",
    )
    require_scope(verified, "idp:admin")
    with pytest.raises(InsufficientScope) as refused:
        require_scope(verified, "write")
    assert refused.value.status == 403
    assert refused.value.client_id == "c1"
    assert 'scope="write"' in bearer_refusal(refused.value).headers["WWW-Authenticate"]


def test_a_next_key_verifies_and_an_audience_list_is_accepted(
    ring: KeyRing, records: list[KeyRecord]
) -> None:
    waiting = next(r for r in records if r.state == "next")
    token = jwt.encode(
        {"alg": "ES256", "kid": waiting.kid, "typ": "application/at+jwt"},
        claims(aud=["https://api.example", AUDIENCE]),
        unseal(waiting, KEK),
        algorithms=["ES256"],
    )
    assert verify(ring, token).client_id == "c1"


@pytest.mark.parametrize(
    ("changes", "known_client"),
    [
        ({"iss": "https://idp.example/"}, True),  # exact match only
        ({"aud": "https://api.example"}, True),
        ({"aud": ["https://api.example"]}, True),
        ({"exp": NOW - 30}, True),  # expiry plus leeway reached
        ({"iat": NOW + 31}, True),
        ({"exp": None}, True),
        ({"exp": "soon"}, True),
        ({"scope": 5}, True),
        ({"scope": "read\\ write"}, True),  # not RFC 6749 3.3 scope tokens
        # The verifier library's rules, which the IdP's own check now shares:
        ({"nbf": NOW + 31}, True),
        ({"sub": None}, True),
        ({"jti": None}, True),
        ({"aud": 5}, True),
        ({"client_id": None}, False),
    ],
)
def test_claims_that_break_a_rule_are_invalid_token(
    ring: KeyRing, changes: dict[str, Any], known_client: bool
) -> None:
    with pytest.raises(InvalidToken) as refused:
        verify(ring, ring.sign("ES256", claims(**changes), "at+jwt", NOW))
    assert refused.value.status == 401
    assert (
        bearer_refusal(refused.value)
        .headers["WWW-Authenticate"]
        .startswith('Bearer realm="idp", error="invalid_token"')
    )
    assert (refused.value.client_id == "c1") is known_client


def test_userinfo_style_check_takes_any_audience(ring: KeyRing) -> None:
    token = ring.sign("ES256", claims(aud="https://api.example"), "at+jwt", NOW)
    verified = verify_access_token(
        token, ring.verification, issuer=ISSUER, audience=None, now=NOW, leeway=30
    )
    assert verified.audience == ("https://api.example",)


def test_leeway_accepts_small_clock_skew(ring: KeyRing) -> None:
    assert verify(ring, ring.sign("ES256", claims(exp=NOW - 29), "at+jwt", NOW))
    assert verify(ring, ring.sign("ES256", claims(iat=NOW + 29), "at+jwt", NOW))


def test_wrong_typ_and_foreign_keys_are_refused_without_a_client(ring: KeyRing) -> None:
    for typ in ("JWT", "at+JWT+x"):
        with pytest.raises(InvalidToken) as refused:
            verify(ring, ring.sign("ES256", claims(), typ, NOW))
        assert refused.value.client_id is None
    other = KeyRing.build([new_key_record("ES256", 2048, KEK, "active", NOW)], 1, KEK)
    with pytest.raises(InvalidToken, match="published key"):
        verify(ring, other.sign("ES256", claims(), "at+jwt", NOW))
    token = ring.sign("ES256", claims(), "at+jwt", NOW)
    header, payload, signature = token.split(".")
    with pytest.raises(InvalidToken, match="signature"):
        verify(ring, f"{header}.{payload}.{signature[::-1]}")


def test_alg_must_match_the_key(ring: KeyRing) -> None:
    es_kid = ring.signing["ES256"][0]
    _, rs_key = ring.signing["RS256"]
    forged = jwt.encode(
        {"alg": "RS256", "kid": es_kid, "typ": "at+jwt"}, claims(), rs_key, algorithms=["RS256"]
    )
    with pytest.raises(InvalidToken, match="alg"):
        verify(ring, forged)


@pytest.mark.parametrize(
    "headers",
    [
        [],
        ["Bearer a", "Bearer b"],
        ["Basic dXNlcjpwdw=="],
        ["Bearer"],
        ["Bearer two words"],
        ["Bearer " + "a" * 9000],
    ],
)
def test_authorization_headers_that_carry_no_usable_token(headers: list[str]) -> None:
    with pytest.raises(InvalidToken):
        bearer_token(headers)


def test_bearer_scheme_is_case_insensitive() -> None:
    assert bearer_token(["bearer abc.def.ghi"]) == "abc.def.ghi"
    assert bearer_token(["BEARER abc.def.ghi"]) == "abc.def.ghi"


def test_no_token_at_all_gets_the_bare_challenge() -> None:
    """RFC 6750 section 3.1: a request without credentials gets no error code."""
    with pytest.raises(MissingToken) as refused:
        bearer_token([])
    answer = bearer_refusal(refused.value)
    assert answer.status == 401
    assert answer.headers["WWW-Authenticate"] == 'Bearer realm="idp"'
