"""The prepared signers write the tokens joserfc writes, and two verifiers accept them."""

from __future__ import annotations

import base64
import json
from typing import Any

import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from joserfc import jwt
from joserfc.jwk import ECKey

from idp.keyring.material import generate_key
from idp.keyring.signing import JwsSigner

CLAIMS: dict[str, Any] = {
    "iss": "https://idp.example",
    "sub": "service-1",
    "aud": ["https://api.example", "https://other.example"],
    "exp": 1_800_000_600,
    "iat": 1_800_000_000,
    "jti": "Xy9-_q",
    "client_id": "service-1",
    "scope": "read write",
    "name": 'Zoë \u00e9t\u00e9 \u65e5\u672c "quoted" back\\slash\nline',
    "flag": True,
}


def _segments(token: str) -> list[bytes]:
    return [base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)) for part in token.split(".")]


def _joserfc(alg: str, kid: str, typ: str, key: Any, claims: dict[str, Any]) -> str:
    return jwt.encode({"alg": alg, "kid": kid, "typ": typ}, claims, key, algorithms=[alg])


def test_rs256_tokens_are_joserfcs_byte_for_byte() -> None:
    key = generate_key("RS256", 2048)
    signer = JwsSigner("RS256", "kid-rs", key)
    for typ in ("at+jwt", "JWT", "logout+jwt", "at+jwt"):
        # RSASSA-PKCS1-v1_5 is deterministic, so the whole token compares.
        assert signer.sign(typ, CLAIMS) == _joserfc("RS256", "kid-rs", typ, key, CLAIMS)


def test_es256_header_and_claims_are_joserfcs_and_the_signature_is_r_and_s() -> None:
    key = generate_key("ES256", 2048)
    signer = JwsSigner("ES256", "kid-es", key)
    ours = signer.sign("at+jwt", CLAIMS)
    theirs = _joserfc("ES256", "kid-es", "at+jwt", key, CLAIMS)
    assert ours.split(".")[:2] == theirs.split(".")[:2]
    header, payload, signature = _segments(ours)
    assert header == b'{"typ":"at+jwt","alg":"ES256","kid":"kid-es"}'
    assert json.loads(payload) == CLAIMS
    # RFC 7518 section 3.4: R and S, each 32 bytes big-endian, not DER.
    assert len(signature) == 64
    assert "=" not in ours


@pytest.mark.parametrize("alg", ["RS256", "ES256"])
def test_tokens_verify_under_joserfc_and_pyjwt(alg: str) -> None:
    key = generate_key(alg, 2048)
    token = JwsSigner(alg, "k1", key).sign("at+jwt", CLAIMS)

    decoded = jwt.decode(token, key, algorithms=[alg])
    assert decoded.header == {"typ": "at+jwt", "alg": alg, "kid": "k1"}
    assert decoded.claims == CLAIMS

    public_pem = key.as_pem(private=False)
    claims = pyjwt.decode(
        token,
        public_pem,
        algorithms=[alg],
        audience="https://api.example",
        issuer="https://idp.example",
        options={"verify_exp": False, "verify_iat": False},
    )
    assert claims == CLAIMS
    assert pyjwt.get_unverified_header(token) == {"typ": "at+jwt", "alg": alg, "kid": "k1"}


def test_a_tampered_token_does_not_verify() -> None:
    key = generate_key("ES256", 2048)
    header, _, signature = JwsSigner("ES256", "k1", key).sign("at+jwt", CLAIMS).split(".")
    forged = base64.urlsafe_b64encode(json.dumps({**CLAIMS, "sub": "x"}).encode()).rstrip(b"=")
    with pytest.raises(pyjwt.InvalidSignatureError):
        pyjwt.decode(
            f"{header}.{forged.decode()}.{signature}",
            key.as_pem(private=False),
            algorithms=["ES256"],
            options={"verify_aud": False, "verify_exp": False},
        )


def test_a_key_signs_only_its_own_algorithm() -> None:
    with pytest.raises(ValueError, match="cannot sign"):
        JwsSigner("ES256", "k1", generate_key("RS256", 2048))
    with pytest.raises(ValueError, match="cannot sign"):
        JwsSigner("RS256", "k1", generate_key("ES256", 2048))
    p384 = ECKey.import_key(ec.generate_private_key(ec.SECP384R1()))
    with pytest.raises(ValueError, match="cannot sign"):
        JwsSigner("ES256", "k1", p384)
    with pytest.raises(ValueError, match="cannot sign"):
        JwsSigner("HS256", "k1", generate_key("ES256", 2048))
