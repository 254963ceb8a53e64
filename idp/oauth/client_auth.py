"""Client authentication at the token endpoint (RFC 6749 sections 2.3.1 and 3.2.1).

Client secrets are random 256-bit values; only their SHA-256 is stored and comparison is
constant-time. A slow password hash is deliberately not used here: the secret already has
full entropy, and a KDF would cap the token endpoint at a few requests per second. (A
client_secret_jwt client's secret is also kept sealed, to key its assertions' HMAC: see
:mod:`idp.oauth.client_secret_jwt`.)
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import unquote_plus

from idp.identifiers import new_identifier
from idp.oauth.errors import InvalidClient, InvalidRequest
from idp.store.base import ClientRecord

AUTH_METHODS = (
    "client_secret_basic",
    "client_secret_post",
    "client_secret_jwt",
    "private_key_jwt",
    "none",
)
CONFIDENTIAL_AUTH_METHODS = AUTH_METHODS[:-1]
SECRET_AUTH_METHODS = ("client_secret_basic", "client_secret_post")
"""The methods that present the client secret itself (the others: an assertion, or nothing)."""
ISSUED_SECRET_METHODS = (*SECRET_AUTH_METHODS, "client_secret_jwt")
"""The methods whose clients are given a secret at registration."""
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
# Compared against when the client does not exist, so an unknown id costs the same.
_DUMMY_HASH = hashlib.sha256(b"idp-no-such-client").digest()


@dataclass(frozen=True)
class PresentedCredentials:
    """What the request carried to identify the client, and by which method."""

    method: str
    client_id: str
    secret: str | None = None
    assertion: str | None = field(default=None, repr=False)
    """A private_key_jwt or client_secret_jwt assertion (RFC 7523 section 2.2), checked by
    :mod:`idp.oauth.client_assertion`."""


def new_client_secret() -> str:
    """A random 256-bit secret, base64url without padding."""
    return secrets.token_urlsafe(32)


def hash_client_secret(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def new_client_id() -> str:
    return new_identifier(16)


def presented_credentials(
    authorization: str | None, form: Mapping[str, str]
) -> PresentedCredentials:
    """Read the client's credentials from the request; exactly one method may be used.

    HTTP Basic carries form-urlencoded id and secret (RFC 6749 section 2.3.1); a client
    assertion comes in the form (RFC 7521 section 4.2), its client named by the form's
    client_id or else by the ``sub`` the caller reads from the assertion.
    """
    in_body = "client_secret" in form
    if "client_assertion" in form or "client_assertion_type" in form:
        if authorization is not None or in_body:
            raise InvalidRequest("use one client authentication method per request, not two")
        return _assertion_credentials(form)
    if authorization is not None:
        scheme, _, value = authorization.strip().partition(" ")
        if scheme.lower() != "basic":
            raise InvalidClient("only HTTP Basic client authentication is accepted in the header")
        if in_body:
            raise InvalidRequest("use one client authentication method per request, not two")
        client_id, secret = _decode_basic(value.strip())
        if "client_id" in form and form["client_id"] != client_id:
            raise InvalidRequest("client_id in the body does not match the Authorization header")
        return PresentedCredentials("client_secret_basic", client_id, secret)
    body_client_id = form.get("client_id")
    if not body_client_id:
        raise InvalidClient("client authentication is required")
    if in_body:
        return PresentedCredentials("client_secret_post", body_client_id, form["client_secret"])
    return PresentedCredentials("none", body_client_id)


def _assertion_credentials(form: Mapping[str, str]) -> PresentedCredentials:
    if form.get("client_assertion_type") != JWT_BEARER:
        raise InvalidClient("client_assertion_type must be " + JWT_BEARER)
    assertion = form.get("client_assertion")
    if not assertion:
        raise InvalidClient("client_assertion is required")
    return PresentedCredentials("private_key_jwt", form.get("client_id", ""), None, assertion)


def _decode_basic(value: str) -> tuple[str, str]:
    try:
        decoded = base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidClient("malformed HTTP Basic credentials") from None
    user, colon, password = decoded.partition(":")
    if not colon or not user:
        raise InvalidClient("malformed HTTP Basic credentials")
    return unquote_plus(user), unquote_plus(password)


def basic_challenge(realm: str, error: InvalidClient | None = None) -> str:
    """The ``WWW-Authenticate`` value of a 401 invalid_client (RFC 6749 section 5.2).

    A Basic challenge (RFC 7617) for ``realm``; with ``error``, it also carries ``error`` and
    ``error_description``, so a client that tried HTTP Basic learns why from the header
    alone, as certified client libraries expect.
    """
    attributes = {"realm": realm}
    if error is not None:
        attributes |= {"error": error.error, "error_description": error.description}
    return "Basic " + ", ".join(f'{name}="{_quoted(v)}"' for name, v in attributes.items())


def _quoted(value: str) -> str:
    """A quoted-string's content (RFC 9110 section 5.6.4)."""
    return value.replace("\\", "\\\\").replace('"', '\\"')


def authenticate(
    client: ClientRecord | None, presented: PresentedCredentials, now: float
) -> ClientRecord:
    """Check the presented credentials against the registered client, in constant time.

    The secret a rotation replaced is accepted as well until its overlap ends at
    ``previous_secret_expires_at`` (``now`` is compared with it). Both comparisons always
    run, so the timing does not tell which secret matched. Every failure gives the same
    invalid_client answer, whatever the reason.
    """
    stored = client.secret_hash if client and client.secret_hash else _DUMMY_HASH
    previous = client.previous_secret_hash if client and client.previous_secret_hash else None
    given = hash_client_secret(presented.secret or "")
    matches = hmac.compare_digest(stored, given)
    matches_previous = hmac.compare_digest(previous or _DUMMY_HASH, given)
    if client is None or presented.method != client.token_endpoint_auth_method:
        raise InvalidClient()
    if presented.method not in (*SECRET_AUTH_METHODS, "none"):
        raise InvalidClient()  # assertion methods are checked by their own module
    if client.is_public:
        return client
    if client.secret_hash is None:
        raise InvalidClient()
    if matches:
        return client
    if matches_previous and previous is not None and previous_secret_valid(client, now):
        return client
    raise InvalidClient()


def previous_secret_valid(client: ClientRecord, now: float) -> bool:
    """Whether the secret a rotation replaced is still accepted at ``now``."""
    expires = client.previous_secret_expires_at
    return client.previous_secret_hash is not None and expires is not None and now < expires
