"""Strict reading of a JWS compact serialization carrying an RFC 9068 access token.

Each check is a small function named after what it refuses; together they are RFC 7515
section 5.2 (JWS validation), RFC 7519 section 7.2 (JWT validation) and RFC 9068 section 4
(access-token validation), with the stricter choices documented in docs/verifying.md.
"""

from __future__ import annotations

import binascii
import json
import re
from collections.abc import Collection
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, NoReturn, TypeGuard

from idp.verify.errors import InvalidToken
from idp.verify.result import VerifiedToken

# Three base64url segments (RFC 7515 section 7.1) and nothing else: no padding, no spaces,
# no JWE (five parts), no JSON serialization.
_COMPACT = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
_FROM_URLSAFE = bytes.maketrans(b"-_", b"+/")
_ACCESS_TOKEN_TYPES = frozenset({"at+jwt", "application/at+jwt"})
# Header parameters that point at, or carry, a key chosen by whoever made the token.
_REFUSED_HEADER_KEYS = ("jku", "x5u", "jwk", "x5c")


def _refuse_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not JSON")


# RFC 8259 has no NaN or Infinity; Python's parser accepts them unless told not to.
# Duplicate member names: the lexically last one wins, as RFC 7515 section 5.2 allows.
_JSON = json.JSONDecoder(parse_constant=_refuse_constant)


@dataclass(frozen=True, slots=True)
class Header:
    """The two header parameters verification needs, from a header that passed every check."""

    kid: str
    alg: str


@dataclass(frozen=True, slots=True)
class Parts:
    """A token split at its dots: the encoded header, the signing input and the raw parts."""

    encoded_header: str
    signing_input: bytes
    encoded_payload: str
    signature: bytes


def split_compact(token: str | bytes, max_bytes: int) -> Parts:
    """Split a compact JWS after bounding its size (RFC 7515 section 7.1)."""
    if not isinstance(token, str | bytes):
        raise InvalidToken("the token is not a string")
    if len(token) > max_bytes:
        raise InvalidToken("the token is too large")
    if isinstance(token, bytes):
        try:
            token = token.decode("ascii")
        except UnicodeDecodeError:
            raise InvalidToken("the token is not a compact JWS") from None
    if _COMPACT.fullmatch(token) is None:
        raise InvalidToken("the token is not a compact JWS")
    signing_input, _, encoded_signature = token.rpartition(".")
    encoded_header, _, encoded_payload = signing_input.partition(".")
    return Parts(
        encoded_header,
        signing_input.encode("ascii"),
        encoded_payload,
        b64decode(encoded_signature),
    )


def b64decode(segment: str) -> bytes:
    """Decode one base64url segment without padding (RFC 7515 section 2)."""
    # bytes.translate with a 256-byte table is several times faster than str.translate.
    try:
        return binascii.a2b_base64(
            (segment + "=" * (-len(segment) % 4)).encode("ascii").translate(_FROM_URLSAFE),
            strict_mode=True,
        )
    except binascii.Error:
        raise InvalidToken("the token is not valid base64url") from None


def json_object(segment: str, what: str) -> dict[str, Any]:
    """A base64url segment holding a UTF-8 JSON object (RFC 7515 section 5.2 steps 2-4)."""
    try:
        value = _JSON.decode(b64decode(segment).decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise InvalidToken(f"the token {what} is not a JSON object") from None
    if not isinstance(value, dict):
        raise InvalidToken(f"the token {what} is not a JSON object")
    return value


def check_header(header: dict[str, Any], algorithms: Collection[str]) -> Header:
    """The header's kid and alg, after refusing anything this verifier does not accept.

    ``alg`` must be one of ``algorithms`` (never ``none`` or HS*); ``kid`` is required;
    ``typ`` must be ``at+jwt`` (RFC 9068 section 4, step 1; case-insensitive, with or without
    ``application/``); ``crit`` is refused, since no extension is understood (RFC 7515
    section 4.1.11); ``jku``, ``x5u``, ``jwk`` and ``x5c`` are refused rather than ignored,
    so a token that asks to be checked with a key of its own choosing is never accepted.
    """
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in algorithms:
        raise InvalidToken("the token's signing algorithm is not accepted")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise InvalidToken("the token header has no kid")
    typ = header.get("typ")
    if not isinstance(typ, str) or typ.lower() not in _ACCESS_TOKEN_TYPES:
        raise InvalidToken("the token is not an access token (typ at+jwt)")
    if "crit" in header:
        raise InvalidToken("the token header has critical extensions")
    for name in _REFUSED_HEADER_KEYS:
        if name in header:
            raise InvalidToken("the token header names its own key")
    return Header(kid=kid, alg=alg)


_NUMBERS = (int, float)  # exact types: JSON gives no others, and bool is not a time


def _number(value: Any) -> TypeGuard[int | float]:
    return type(value) in _NUMBERS


def _string(claims: dict[str, Any], name: str) -> str:
    value = claims.get(name)
    if not isinstance(value, str) or not value:
        raise InvalidToken(f"the token has no valid {name} claim")
    return value


def check_claims(
    claims: dict[str, Any],
    header: Header,
    *,
    issuer: str,
    audiences: frozenset[str] | None,
    now: float,
    leeway: float,
) -> VerifiedToken:
    """The verified token, once the claims meet RFC 9068 sections 2.2 and 4.

    ``iss`` equals the issuer exactly; ``aud`` (a string or an array of strings) holds one
    of the accepted audiences (any audience when ``audiences`` is None: for the issuer's
    own endpoints, such as UserInfo, that take a token whatever resource it was meant
    for); ``exp`` is required and not passed, ``nbf`` when present is reached and ``iat``
    is required and not in the future, each with ``leeway`` seconds;
    ``sub``, ``client_id`` and ``jti`` are required strings; ``scope``, when present, is a
    space-separated string.
    """
    if claims.get("iss") != issuer:
        raise InvalidToken("the token was issued by another issuer")
    audience = _audience(claims.get("aud"))
    if audiences is not None and audiences.isdisjoint(audience):
        raise InvalidToken("the token is meant for another audience")
    expires_at, issued_at, not_before = claims.get("exp"), claims.get("iat"), claims.get("nbf")
    if not _number(expires_at):
        raise InvalidToken("the token has no valid exp claim")
    if now - leeway >= expires_at:
        raise InvalidToken("the token has expired")
    if not _number(issued_at):
        raise InvalidToken("the token has no valid iat claim")
    if issued_at > now + leeway:
        raise InvalidToken("the token was issued in the future")
    if not_before is not None and (not _number(not_before) or not_before > now + leeway):
        raise InvalidToken("the token is not valid yet")
    scope = claims.get("scope", "")
    if not isinstance(scope, str):
        raise InvalidToken("the token has no valid scope claim")
    return VerifiedToken(
        claims=MappingProxyType(claims),
        issuer=issuer,
        subject=_string(claims, "sub"),
        client_id=_string(claims, "client_id"),
        scopes=tuple(scope.split()),
        audience=audience,
        expires_at=expires_at,
        issued_at=issued_at,
        jti=_string(claims, "jti"),
        kid=header.kid,
        alg=header.alg,
    )


def _audience(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and value and all(isinstance(item, str) for item in value):
        return tuple(value)
    raise InvalidToken("the token has no valid aud claim")
