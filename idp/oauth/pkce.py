"""Proof Key for Code Exchange (RFC 7636), S256 only."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

from idp.oauth.errors import InvalidGrant, InvalidRequest

S256 = "S256"
# RFC 7636 section 4.1 (verifier) and 4.2 (challenge: BASE64URL of a SHA-256, 43 characters).
_VERIFIER = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")
_CHALLENGE = re.compile(r"^[A-Za-z0-9\-_]{43}$")


def s256_challenge(verifier: str) -> str:
    """BASE64URL-ENCODE(SHA256(ASCII(code_verifier))) (RFC 7636 section 4.2)."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def check_challenge(challenge: str | None, method: str | None, *, required: bool) -> str | None:
    """Validate the authorization request's PKCE parameters (RFC 7636 section 4.3).

    Only S256 is accepted; ``plain`` is refused (RFC 9700 section 2.1.1). Public clients must
    send a challenge (RFC 9700 section 2.1.1); the method defaults to ``plain`` when omitted
    (RFC 7636 section 4.3), so an omitted method is refused too.
    """
    if challenge is None:
        if method is not None:
            raise InvalidRequest("code_challenge_method given without code_challenge")
        if required:
            raise InvalidRequest("code_challenge (PKCE, S256) is required for this client")
        return None
    if method != S256:
        raise InvalidRequest("code_challenge_method must be S256")
    if not _CHALLENGE.match(challenge):
        raise InvalidRequest("code_challenge must be a base64url SHA-256 (43 characters)")
    return challenge


def verify_code_verifier(challenge: str | None, verifier: str | None) -> None:
    """Check the token request's code_verifier against the code's challenge (RFC 7636 4.6)."""
    if challenge is None:
        if verifier is not None:
            raise InvalidGrant("code_verifier given but the authorization request had no PKCE")
        return
    if verifier is None or not _VERIFIER.match(verifier):
        raise InvalidGrant("code_verifier is missing or malformed")
    if not hmac.compare_digest(s256_challenge(verifier), challenge):
        raise InvalidGrant("code_verifier does not match the code_challenge")
