"""Pure protocol pieces of sign-on: PKCE, at_hash, sealed forms, request checks."""

from __future__ import annotations

import pytest

from idp.oauth.authorization import (
    AuthorizationRequest,
    ClientNotIdentified,
    check_max_age,
    check_prompt,
    code_redirect,
    identify,
)
from idp.oauth.errors import InvalidGrant, InvalidRequest
from idp.oauth.id_token import InvalidIdToken, at_hash, check_id_token
from idp.oauth.pkce import check_challenge, s256_challenge, verify_code_verifier
from idp.sealing import FormSealer
from tests.support.records import a_web_client

RFC7636_VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
RFC7636_CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def test_s256_matches_rfc_7636_appendix_b() -> None:
    assert s256_challenge(RFC7636_VERIFIER) == RFC7636_CHALLENGE
    verify_code_verifier(RFC7636_CHALLENGE, RFC7636_VERIFIER)
    for verifier in (None, "short", RFC7636_VERIFIER[:-1] + "l", RFC7636_VERIFIER + "!"):
        with pytest.raises(InvalidGrant):
            verify_code_verifier(RFC7636_CHALLENGE, verifier)
    with pytest.raises(InvalidGrant):
        verify_code_verifier(None, RFC7636_VERIFIER)
    verify_code_verifier(None, None)


def test_challenge_rules() -> None:
    assert check_challenge(RFC7636_CHALLENGE, "S256", required=True) == RFC7636_CHALLENGE
    assert check_challenge(None, None, required=False) is None
    for challenge, method, required in (
        (RFC7636_CHALLENGE, "plain", False),
        (RFC7636_CHALLENGE, None, False),
        (None, None, True),
        (None, "S256", False),
        ("tooshort", "S256", False),
    ):
        with pytest.raises(InvalidRequest):
            check_challenge(challenge, method, required=required)


def test_at_hash_is_the_left_half_of_the_digest() -> None:
    # OpenID Connect Core 1.0 appendix A.3: access token and its at_hash (RS256).
    assert at_hash("jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y", "RS256") == (
        "77QmUPtjPfzWtF2AnpK9RQ"
    )
    assert len(at_hash("token", "ES384")) == 32


def test_sealed_forms_refuse_tampering_other_purposes_and_age() -> None:
    sealer = FormSealer(b"k" * 32)
    sealed = sealer.seal("login", {"a": 1}, expires_at=100.0)
    assert sealer.unseal("login", sealed, 99.0) == {"a": 1}
    assert sealer.unseal("login", sealed, 100.0) is None
    assert sealer.unseal("consent", sealed, 99.0) is None
    assert sealer.unseal("login", sealed[:-1] + ("A" if sealed[-1] != "A" else "B"), 99.0) is None
    assert sealer.unseal("login", "garbage", 99.0) is None
    assert FormSealer(b"j" * 32).unseal("login", sealed, 99.0) is None
    token = sealer.csrf_token("browser-1", sealed)
    assert sealer.csrf_matches("browser-1", sealed, token)
    assert not sealer.csrf_matches("browser-2", sealed, token)
    assert not sealer.csrf_matches(None, sealed, token)
    assert not sealer.csrf_matches("browser-1", sealed, None)
    assert not sealer.csrf_matches("browser-1", sealed + "x", token)


def test_client_and_redirect_uri_are_identified_before_anything_else() -> None:
    client = a_web_client(redirect_uris=("https://app.example/cb", "https://app.example/cb?x=1"))
    assert identify({"redirect_uri": "https://app.example/cb?x=1"}, client)[1].endswith("x=1")
    for params, found in (
        ({"redirect_uri": "https://app.example/cb"}, None),
        ({}, client),
        ({"redirect_uri": "https://app.example/cb/"}, client),
        ({"redirect_uri": "https://app.example/cb?x=2"}, client),
    ):
        with pytest.raises(ClientNotIdentified):
            identify(params, found)
    service = a_web_client(grant_types=("client_credentials",))
    with pytest.raises(ClientNotIdentified):
        identify({"redirect_uri": "https://app.example/cb"}, service)


def test_prompt_and_max_age_checks() -> None:
    assert check_prompt({"prompt": "login consent"}) == ("login", "consent")
    assert check_prompt({}) == ()
    assert check_max_age({"max_age": "0"}) == 0
    for bad in ({"prompt": "none consent"}, {"prompt": "select_account"}):
        with pytest.raises(InvalidRequest):
            check_prompt(bad)
    for raw in ("-1", "1.5", "\u0661", "99999999999"):
        with pytest.raises(InvalidRequest):
            check_max_age({"max_age": raw})


def test_code_redirect_keeps_the_registered_query() -> None:
    request = AuthorizationRequest(
        client_id="c",
        redirect_uri="https://app.example/cb?tenant=a",
        scope=("openid",),
        state="s&t",
        nonce=None,
        code_challenge=None,
        code_challenge_method=None,
        prompt=(),
        max_age=None,
        login_hint=None,
    )
    assert code_redirect(request, "abc", "https://id.example") == (
        "https://app.example/cb?tenant=a&code=abc&state=s%26t&iss=https%3A%2F%2Fid.example"
    )


def test_only_id_tokens_issued_to_a_client_pass_as_hints() -> None:
    """Access tokens (at+jwt) and logout tokens (logout+jwt, events) are not ID tokens."""
    issuer = "https://idp.example"
    claims = {"iss": issuer, "sub": "u1", "aud": "c1", "azp": "c1", "exp": 1, "iat": 0}
    check_id_token({"typ": "JWT"}, claims, issuer)
    check_id_token({}, claims, issuer)
    check_id_token({"typ": "jwt"}, {**claims, "aud": ["c1"], "exp": 0}, issuer)
    events = {"http://schemas.openid.net/event/backchannel-logout": {}}
    refused = [
        ({"typ": "at+jwt"}, claims),
        ({"typ": "application/at+jwt"}, claims),
        ({"typ": "logout+jwt"}, claims),
        ({"typ": 1}, claims),
        ({"typ": "JWT"}, {**claims, "events": events}),
        ({"typ": "JWT"}, {**claims, "iss": "https://other.example"}),
        ({"typ": "JWT"}, {**claims, "sub": ""}),
        ({"typ": "JWT"}, {k: v for k, v in claims.items() if k not in ("aud", "azp")}),
        ({"typ": "JWT"}, {**claims, "aud": ["c1", "c2"], "azp": None}),
    ]
    for header, bad in refused:
        with pytest.raises(InvalidIdToken):
            check_id_token(header, bad, issuer)
