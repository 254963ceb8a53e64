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

from idp.oauth.client_jwt import checked_expiry, signing_header
from idp.oauth.client_keys import ASSERTION_ALGS, ClientKeySets
from idp.oauth.errors import InvalidClient, InvalidRequestObject
from idp.store.base import ClientRecord
from idp.verify.compact import json_object, split_compact
from idp.verify.errors import InvalidToken

REQUEST_OBJECT_ALGS = ASSERTION_ALGS
MAX_REQUEST_OBJECT_BYTES = 16384
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
        alg, kid = signing_header(header, REQUEST_OBJECT_ALGS)
        key = await keys.key(client, kid, alg)
        key.verify(parts.signing_input, parts.signature)
    except (InvalidToken, InvalidClient):
        raise InvalidRequestObject(
            "the request object is not a JWT signed by a key the client registered"
        ) from None
    _check_claims(claims, client.client_id, issuer, now)
    return _params(claims, client.client_id)


def _check_claims(claims: Mapping[str, Any], client_id: str, issuer: str, now: float) -> None:
    if claims.get("iss") != client_id:
        raise InvalidRequestObject("the request object's iss is not the client_id")
    if claims.get("client_id", client_id) != client_id:
        raise InvalidRequestObject("the request object's client_id is another client's")
    audience = claims.get("aud")
    audiences = audience if isinstance(audience, list) else [audience]
    if issuer not in audiences:
        raise InvalidRequestObject("the request object's aud is not this issuer")
    try:
        checked_expiry(claims, now, "the request object")
    except InvalidToken as refused:
        raise InvalidRequestObject(refused.description) from None
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
