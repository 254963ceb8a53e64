"""Accepting a pushed authorization request (RFC 9126 section 2).

The request is checked as /authorize would check it (:mod:`idp.oauth.par`) and kept until
/authorize uses it once (:func:`idp.sso.signin.answer_authorization_request`) or it
expires.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from idp.oauth.par import PUSHED_REQUEST_LIFETIME, new_request_uri, pushed_record
from idp.oauth.par import validate_pushed_request as validate
from idp.oauth.request_object import request_object_params
from idp.sso.outcomes import SignInServices
from idp.store.base import ClientRecord


@dataclass(frozen=True)
class PushedRequest:
    """The answer to a push (section 2.2): the reference and its lifetime in seconds."""

    request_uri: str
    expires_in: int


async def push_authorization_request(
    services: SignInServices,
    client: ClientRecord,
    params: Mapping[str, str],
    *,
    resources: Sequence[str] = (),
    proved_jkt: str | None = None,
) -> PushedRequest:
    """Check the request of the authenticated ``client`` and keep it under a new
    request_uri; an OAuthError (section 2.3) when /authorize would refuse it.

    ``resources`` are the push's ``resource`` values (RFC 8707); ``proved_jkt`` the key of
    the push's DPoP proof, to which the code will be bound (RFC 9449 section 10.1)."""
    if "request" in params:
        # RFC 9126 section 3: a pushed request object; only its claims count (RFC 9101 5).
        unpacked = await request_object_params(
            params["request"],
            client,
            services.client_keys,
            services.settings.issuer,
            services.clock(),
        )
        params, resources = unpacked.params, unpacked.resources
    request = validate(
        params, client, services.keys.ring, services.settings.issuer, resources, proved_jkt
    )
    request_uri = new_request_uri()
    await services.store.create_pushed_request(
        pushed_record(request, request_uri, services.clock())
    )
    return PushedRequest(request_uri, PUSHED_REQUEST_LIFETIME)
