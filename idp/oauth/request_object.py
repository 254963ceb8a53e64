"""Request objects (RFC 9101, JWT-Secured Authorization Request; OpenID Connect Core 1.0
section 6.1): the authorization request's parameters as the claims of a JWT the client
signed, sent by value in ``request`` at /authorize or pushed to /par.

The rules, each refused with ``invalid_request_object``:

- the JWS is signed (RS256, PS256 or ES256; never ``none`` or an HMAC) by a key of the
  client's registered JWK Set or ``jwks_uri``, as private_key_jwt assertions are
  (:mod:`idp.oauth.client_keys`); a client without registered keys cannot use them;
- ``iss`` is the client_id and ``aud`` holds our issuer (RFC 9101 section 10.2); a
  ``client_id`` claim, when present, is the client's too;
- ``exp`` is in the future and at most an hour after ``iat`` or now; ``nbf``, when given,
  has passed (30 s leeway);
- the parameters are the claims alone: any parameter sent beside ``request`` except
  ``client_id`` is ignored (section 5); a ``request`` or ``request_uri`` claim is refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from idp.oauth.client_keys import ASSERTION_ALGS, ClientKeySets
from idp.oauth.errors import InvalidClient, InvalidRequestObject
from idp.store.base import ClientRecord
from idp.verify.compact import json_object, split_compact
from idp.verify.errors import InvalidToken

REQUEST_OBJECT_ALGS = ASSERTION_ALGS
MAX_REQUEST_OBJECT_BYTES = 16384
MAX_LIFETIME = 3600
LEEWAY = 30
JWT_CLAIMS = frozenset({"iss", "aud", "exp", "iat", "nbf", "jti", "sub"})
"""Claims that describe the JWT itself, not the authorization request."""


@dataclass(frozen=True)
class RequestObjectParams:
    """The authorization request a request object carries: its single-valued parameters and
    its ``resource`` values (RFC 8707: a string or an array)."""

    params: dict[str, str]
    resources: tuple[str, ...]


async def request_object_params(
    request_object: str, client: ClientRecord, keys: ClientKeySets, issuer: str, now: float
) -> RequestObjectParams:
    """The parameters of a request object the client signed (the rules above)."""
    try:
        parts = split_compact(request_object, MAX_REQUEST_OBJECT_BYTES)
        header = json_object(parts.encoded_header, "header")
        claims = json_object(parts.encoded_payload, "payload")
        alg, kid = _header(header)
        key = await keys.key(client, kid, alg)
        key.verify(parts.signing_input, parts.signature)
    except (InvalidToken, InvalidClient):
        raise InvalidRequestObject(
            "the request object is not a JWT signed by a key the client registered"
        ) from None
    _check_claims(claims, client.client_id, issuer, now)
    return _params(claims, client.client_id)


def _header(header: dict[str, Any]) -> tuple[str, str | None]:
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in REQUEST_OBJECT_ALGS:
        raise InvalidToken("the request object's algorithm is not accepted")
    if "crit" in header or any(name in header for name in ("jku", "x5u", "jwk", "x5c")):
        raise InvalidToken("the request object names its own key or critical extensions")
    kid = header.get("kid")
    if kid is not None and not isinstance(kid, str):
        raise InvalidToken("the request object's kid is not a string")
    return alg, kid


def _check_claims(claims: Mapping[str, Any], client_id: str, issuer: str, now: float) -> None:
    if claims.get("iss") != client_id:
        raise InvalidRequestObject("the request object's iss is not the client_id")
    if claims.get("client_id", client_id) != client_id:
        raise InvalidRequestObject("the request object's client_id is another client's")
    audience = claims.get("aud")
    audiences = audience if isinstance(audience, list) else [audience]
    if issuer not in audiences:
        raise InvalidRequestObject("the request object's aud is not this issuer")
    exp = _time(claims.get("exp"))
    if exp is None or exp + LEEWAY <= now:
        raise InvalidRequestObject("the request object has expired or has no exp")
    iat = _time(claims.get("iat"))
    start = now if iat is None else min(iat, now)
    if exp - start > MAX_LIFETIME:
        raise InvalidRequestObject("the request object lives longer than an hour")
    if "nbf" in claims:
        nbf = _time(claims["nbf"])
        if nbf is None or nbf - LEEWAY > now:
            raise InvalidRequestObject("the request object is not valid yet")
    if "request" in claims or "request_uri" in claims:
        raise InvalidRequestObject("a request object cannot hold request or request_uri")


def _params(claims: Mapping[str, Any], client_id: str) -> RequestObjectParams:
    """The claims as authorization request parameters: strings as they are, integers (such as
    max_age) in decimal; ``resource`` may be an array; anything else is refused."""
    params: dict[str, str] = {"client_id": client_id}
    resources: tuple[str, ...] = ()
    for name, value in claims.items():
        if name in JWT_CLAIMS or name == "client_id":
            continue
        if name == "resource":
            listed = value if isinstance(value, list) else [value]
            if not all(isinstance(v, str) for v in listed):
                raise InvalidRequestObject("resource must be a string or an array of strings")
            resources = tuple(listed)
        elif isinstance(value, str):
            params[name] = value
        elif type(value) is int:
            params[name] = str(value)
        else:
            raise InvalidRequestObject(f"the request object's {name} is not a string")
    return RequestObjectParams(params, resources)


def _time(value: Any) -> float | None:
    """A NumericDate (RFC 7519 section 2): a JSON number, not a boolean or a string."""
    return float(value) if type(value) in (int, float) else None
