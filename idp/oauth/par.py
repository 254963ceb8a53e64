"""Pushed authorization requests (RFC 9126).

A client posts its authorization request to the PAR endpoint, authenticated as at the
token endpoint; the request is checked there exactly as /authorize checks it, and kept
under a one-time ``request_uri`` that the browser then carries to /authorize with the
client_id alone. The request's details never pass through the browser, and a client that
is registered to (or a server configured to) require this cannot be sent a forged request
through a crafted link.

The protocol floor: plain values in, a validated request or an OAuthError out.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import replace

from idp.keyring.ring import KeyRing
from idp.oauth.authorization import (
    AuthorizationError,
    AuthorizationRequest,
    ClientNotIdentified,
    identify,
    validate_authorization_request,
)
from idp.oauth.errors import InvalidDpopProof, InvalidRequest, OAuthError, UnauthorizedClient
from idp.store.base import ClientRecord, PushedRequestRecord

REQUEST_URI_PREFIX = "urn:ietf:params:oauth:request_uri:"
"""RFC 9126 section 2.2: a URN in the IANA's OAuth URN space."""
PUSHED_REQUEST_LIFETIME = 60
"""Seconds a pushed request stays usable (section 2.2: short, "between 5 and 600 seconds")."""
MAX_REQUEST_URI_LENGTH = 256


class UnknownRequestUri(Exception):
    """The request_uri names no usable pushed request: unknown, used, expired, or another
    client's (section 4). Shown to the user, never redirected: the redirect URI it would
    go to is inside the request that cannot be found."""


def request_uri_hash(request_uri: str) -> bytes:
    """What the store keeps of a request_uri: its SHA-256, so a copy of the table cannot
    replay the references in it."""
    return hashlib.sha256(request_uri.encode("utf-8")).digest()


def new_request_uri() -> str:
    """A fresh reference: the URN prefix and 256 random bits (section 2.2, section 7.1)."""
    return REQUEST_URI_PREFIX + secrets.token_urlsafe(32)


def check_pushed_params(params: Mapping[str, str], client: ClientRecord) -> None:
    """What the push itself must satisfy (section 2.1): no request_uri inside a pushed
    request, and a client_id, when sent, that names the authenticated client."""
    if "request_uri" in params:
        raise InvalidRequest("request_uri must not be sent to the pushed authorization endpoint")
    client_id = params.get("client_id")
    if client_id is not None and client_id != client.client_id:
        raise InvalidRequest("client_id does not match the authenticated client")


def validate_pushed_request(
    params: Mapping[str, str],
    client: ClientRecord,
    ring: KeyRing,
    issuer: str,
    resources: Sequence[str] = (),
    proved_jkt: str | None = None,
) -> AuthorizationRequest:
    """Run every check /authorize runs, for the authenticated ``client`` (section 2.1).

    Errors come back as OAuth errors (section 2.3), to be answered as JSON: nothing is
    redirected from this endpoint. ``resources`` are the push's ``resource`` values (RFC
    8707); ``proved_jkt`` is the key of the push's own DPoP proof, which binds the code
    (:func:`bind_to_proved_key`).
    """
    check_pushed_params(params, client)
    with_client = {**params, "client_id": client.client_id}
    try:
        registered, redirect_uri = identify(with_client, client)
    except ClientNotIdentified as exc:
        if "authorization_code" not in client.grant_types:
            raise UnauthorizedClient(str(exc)) from None
        raise InvalidRequest(str(exc)) from None
    try:
        request = validate_authorization_request(
            with_client, registered, redirect_uri, ring, issuer, resources
        )
    except AuthorizationError as exc:
        raise exc.error from None
    return bind_to_proved_key(request, proved_jkt)


def bind_to_proved_key(
    request: AuthorizationRequest, proved_jkt: str | None
) -> AuthorizationRequest:
    """The request bound to the key of the push's DPoP proof, when it had one (RFC 9449
    section 10.1): a ``dpop_jkt`` sent beside the proof must name that same key, else
    invalid_dpop_proof."""
    if proved_jkt is None:
        return request
    if request.dpop_jkt is not None and request.dpop_jkt != proved_jkt:
        raise InvalidDpopProof("dpop_jkt does not match the key of the DPoP proof")
    return replace(request, dpop_jkt=proved_jkt)


def pushed_record(
    request: AuthorizationRequest, request_uri: str, now: float
) -> PushedRequestRecord:
    """What the store keeps of a validated pushed request."""
    return PushedRequestRecord(
        request_uri_hash=request_uri_hash(request_uri),
        client_id=request.client_id,
        request=json.dumps(request.to_document(), separators=(",", ":")),
        created_at=now,
        expires_at=now + PUSHED_REQUEST_LIFETIME,
    )


def check_request_uri(params: Mapping[str, str]) -> str:
    """The request_uri at /authorize is one of ours in form (section 4)."""
    request_uri = params.get("request_uri", "")
    if not request_uri.startswith(REQUEST_URI_PREFIX) or len(request_uri) > MAX_REQUEST_URI_LENGTH:
        raise UnknownRequestUri("the request_uri is not one this server issued")
    return request_uri


def pushed_request(
    pushed: PushedRequestRecord | None, client_id: str, client: ClientRecord | None
) -> AuthorizationRequest:
    """The request a consumed pushed request holds, if it may still be answered (section 4):
    it existed and had not expired, it was pushed by the client named in the URL, and that
    client may still use the code flow with the same redirect URI."""
    if pushed is None:
        raise UnknownRequestUri("the request_uri is unknown, already used or expired")
    if pushed.client_id != client_id:
        raise UnknownRequestUri("the request_uri was pushed by another client")
    request = AuthorizationRequest.from_document(json.loads(pushed.request))
    try:
        identify({"redirect_uri": request.redirect_uri}, client)
    except ClientNotIdentified as exc:
        raise UnknownRequestUri(str(exc)) from None
    return request


def par_required(client: ClientRecord, required_for_all: bool) -> OAuthError | None:
    """The error for an authorization request sent without a push when pushing is required
    for this client or for all (section 5 and section 6), else None."""
    if client.require_par or required_for_all:
        return InvalidRequest("this client must push its authorization requests first (RFC 9126)")
    return None
