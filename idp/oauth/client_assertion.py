"""private_key_jwt and client_secret_jwt: a client authenticates with a JWT it signed
(RFC 7523 sections 2.2 and 3, RFC 7521 section 4.2, OpenID Connect Core 1.0 section 9).

The assertion's rules, each refused with the same 401 invalid_client:

- ``client_assertion_type`` is ``urn:ietf:params:oauth:client-assertion-type:jwt-bearer``;
- for private_key_jwt, the JWS is signed (RS256, PS256 or ES256; never ``none`` or HMAC) by a
  key of the client's registered JWK Set or ``jwks_uri``, named by ``kid`` (or the only key of
  that algorithm); for client_secret_jwt, it is an HS256 MAC keyed with the client's current
  secret (:mod:`idp.oauth.client_secret_jwt`; never another alg);
- ``iss`` and ``sub`` are the client_id; ``aud`` holds our issuer, or the URL of our token
  endpoint or of the endpoint called (RFC 7523 section 3, point 3);
- ``exp`` is in the future (leeway 30 s) and at most an hour after ``iat`` or now (the
  default lifetime of common client libraries), so an assertion cannot be made to live
  long; ``nbf``, when given, has passed;
- ``jti`` is present and was never used before by this client (recorded in the store until
  the assertion expires, so every replica refuses a replay).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from idp.oauth.client_jwt import LEEWAY, checked_expiry, signing_header
from idp.oauth.client_keys import ASSERTION_ALGS, ClientKeySets
from idp.oauth.client_secret_jwt import (
    CLIENT_SECRET_JWT,
    HMAC_ALGS,
    hs256_matches,
    open_client_secret,
)
from idp.oauth.errors import InvalidClient
from idp.store.base import ClientAssertionStore, ClientRecord
from idp.verify.compact import Parts, json_object, split_compact
from idp.verify.errors import InvalidToken

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
PRIVATE_KEY_JWT = "private_key_jwt"
ASSERTION_METHODS = (PRIVATE_KEY_JWT, CLIENT_SECRET_JWT)
MAX_ASSERTION_BYTES = 8192


@dataclass(frozen=True)
class AssertionCheck:
    """Where the assertion is checked: who we are, which endpoint, the keys and the store."""

    audiences: Collection[str]
    keys: ClientKeySets
    store: ClientAssertionStore
    now: float
    key_encryption_key: bytes = field(default=b"", repr=False)
    """Opens the sealed secrets of client_secret_jwt clients; empty: none is accepted."""


def assertion_client_id(assertion: str) -> str:
    """The client an assertion claims to come from (its unverified ``sub``), used to find
    the client when the form has no client_id (RFC 7521 section 4.2); InvalidClient when
    it cannot be read."""
    try:
        parts = split_compact(assertion, MAX_ASSERTION_BYTES)
        claims = json_object(parts.encoded_payload, "payload")
    except InvalidToken:
        raise InvalidClient() from None
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject:
        raise InvalidClient()
    return subject


async def authenticate_with_assertion(
    client: ClientRecord | None, assertion: str, check: AssertionCheck
) -> ClientRecord:
    """The client, once its assertion has passed every rule above; else InvalidClient.

    The client's registered method decides how the signature is checked (a registered key,
    or its secret); the claims and the single use of the jti are checked alike for both.
    """
    if client is None or client.token_endpoint_auth_method not in ASSERTION_METHODS:
        raise InvalidClient()
    try:
        parts = split_compact(assertion, MAX_ASSERTION_BYTES)
        header = json_object(parts.encoded_header, "header")
        claims = json_object(parts.encoded_payload, "payload")
        if client.token_endpoint_auth_method == CLIENT_SECRET_JWT:
            _verify_with_secret(client, header, parts, check)
        else:
            await _verify_with_key(client, header, parts, check)
    except InvalidToken:
        raise InvalidClient() from None
    return await _accept_once(client, claims, check)


async def _verify_with_key(
    client: ClientRecord, header: dict[str, Any], parts: Parts, check: AssertionCheck
) -> None:
    """private_key_jwt: the JWS verifies under the registered key it names."""
    alg, kid = signing_header(header, ASSERTION_ALGS)
    key = await check.keys.key(client, kid, alg)
    key.verify(parts.signing_input, parts.signature)


def _verify_with_secret(
    client: ClientRecord, header: dict[str, Any], parts: Parts, check: AssertionCheck
) -> None:
    """client_secret_jwt: the JWS is the HS256 MAC keyed with the client's sealed secret."""
    signing_header(header, HMAC_ALGS)
    secret = open_client_secret(client, check.key_encryption_key)
    if secret is None or not hs256_matches(secret, parts.signing_input, parts.signature):
        raise InvalidClient()


async def _accept_once(
    client: ClientRecord, claims: dict[str, Any], check: AssertionCheck
) -> ClientRecord:
    """The client, once the claims pass RFC 7523 section 3 and the jti was never used."""
    jti, expires = _claims(claims, client.client_id, check)
    if not await check.store.use_client_assertion(jti_hash(client.client_id, jti), expires):
        raise InvalidClient("the client assertion was already used")
    return client


def jti_hash(client_id: str, jti: str) -> bytes:
    """What the store keeps of a used assertion: a hash of its client and jti."""
    return hashlib.sha256(json.dumps([client_id, jti]).encode()).digest()


def _claims(claims: dict[str, Any], client_id: str, check: AssertionCheck) -> tuple[str, float]:
    """The jti and expiry of claims that pass RFC 7523 section 3."""
    if claims.get("iss") != client_id or claims.get("sub") != client_id:
        raise InvalidClient()
    audience = claims.get("aud")
    audiences = audience if isinstance(audience, list) else [audience]
    if not any(isinstance(a, str) and a in check.audiences for a in audiences):
        raise InvalidClient()
    try:
        exp = checked_expiry(claims, check.now)
    except InvalidToken:
        raise InvalidClient() from None
    jti = claims.get("jti")
    if not isinstance(jti, str) or not jti or len(jti) > 256:
        raise InvalidClient()
    return jti, exp + LEEWAY
