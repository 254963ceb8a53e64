"""Client authentication for the endpoints a client calls directly: token, introspection,
revocation (RFC 6749 section 2.3.1; RFC 7662 section 2.1; RFC 7009 section 2.1)."""

from __future__ import annotations

from dataclasses import replace

from starlette.requests import Request

from idp.http.forms import read_form
from idp.http.services import Services
from idp.keyring.ring import KeyRing
from idp.oauth.client_assertion import (
    AssertionCheck,
    assertion_client_id,
    authenticate_with_assertion,
)
from idp.oauth.client_auth import authenticate, basic_challenge, presented_credentials
from idp.oauth.errors import InvalidClient, InvalidRequest
from idp.oauth.grants.base import TokenRequest
from idp.oauth.presented_tokens import TokenCheck
from idp.store.base import ClientRecord

MAX_CLIENT_ID_LENGTH = 256


def one_authorization(request: Request) -> str | None:
    """The request's Authorization header; several are refused (RFC 6749 section 3.2)."""
    return only_authorization(request.headers.getlist("authorization"))


def only_authorization(values: list[str]) -> str | None:
    """The one Authorization header among ``values``; several are refused."""
    if len(values) > 1:
        raise InvalidRequest("more than one Authorization header")
    return values[0] if values else None


def challenged(error: InvalidClient, issuer: str, authorization: str | None) -> InvalidClient:
    """``error`` with its Basic challenge: realm the issuer, and the error code and
    description when the request carried an Authorization header (RFC 6749 section 5.2)."""
    shown = error if authorization is not None else None
    error.headers["WWW-Authenticate"] = basic_challenge(issuer, shown)
    return error


async def authenticated_client(
    authorization: str | None, form: TokenRequest, found: Services, endpoint: str = "/token"
) -> ClientRecord:
    """The registered client the request's credentials prove now, or 401 invalid_client.

    A private_key_jwt or client_secret_jwt assertion (RFC 7523) is checked with the
    clients' key sets and the key-encryption key (which opens client_secret_jwt secrets),
    addressed to the issuer, its token endpoint or ``endpoint`` (the path called)."""
    store, issuer, now = found.store, found.settings.issuer, found.clock()
    try:
        presented = presented_credentials(authorization, form.params)
        if presented.assertion is not None and not presented.client_id:
            presented = replace(presented, client_id=assertion_client_id(presented.assertion))
        if len(presented.client_id) > MAX_CLIENT_ID_LENGTH or "\x00" in presented.client_id:
            raise InvalidClient()
        client = await store.get_client_cached(presented.client_id)
        if presented.assertion is None:
            return authenticate(client, presented, now)
        audiences = {issuer, f"{issuer}/token", f"{issuer}{endpoint}"}
        check = AssertionCheck(
            audiences, found.client_keys, store, now, found.settings.key_encryption_key
        )
        return await authenticate_with_assertion(client, presented.assertion, check)
    except InvalidClient as exc:
        raise challenged(exc, issuer, authorization) from None


async def client_and_token(request: Request, found: Services) -> tuple[ClientRecord, str]:
    """Read the form, authenticate the client as /token does, and take ``token``.

    ``token_type_hint`` is accepted and ignored: the type shows in the token itself
    (RFC 7662 section 2.1 and RFC 7009 section 2.1 allow that), so an unknown or wrong
    hint changes nothing.
    """
    form: TokenRequest = await read_form(request)
    authorization = one_authorization(request)
    client = await authenticated_client(authorization, form, found, endpoint=request.url.path)
    token = form.get("token")
    if token is None:
        raise InvalidRequest("token is required")
    return client, token


def token_check(found: Services, ring: KeyRing) -> TokenCheck:
    """What checking a presented token needs: issuer, key ring, clock and store."""
    return TokenCheck(issuer=found.settings.issuer, ring=ring, clock=found.clock, store=found.store)
