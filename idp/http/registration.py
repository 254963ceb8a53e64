"""The client registration endpoint, POST /register (RFC 7591 section 3), and the client
configuration endpoint, GET, PUT and DELETE /register/{client_id} (RFC 7592 section 2).

A registration carries an initial access token as a Bearer token, or none when open
registration is on (public native apps only); management carries the client's registration
access token. Each request counts against its address's rate limit first (429 with
Retry-After past it). Answers are JSON and never cached; refusals are OAuth errors.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from idp.admin.context import AdminContext
from idp.admin.registration import (
    delete_registration,
    register_client,
    registered,
    replace_registration,
)
from idp.http.responses import NO_STORE, json_response
from idp.http.services import Services, client_address, services
from idp.oauth.bearer import BEARER, presented_token
from idp.oauth.dynamic_registration import InvalidToken, client_metadata
from idp.oauth.errors import InvalidRequest, OAuthError
from idp.sso.rate_limit import rate_key, take_request
from idp.verify.errors import VerificationError

JSON_TYPE = "application/json"
ONE_BEARER = "send one Bearer token in the Authorization header"


class TooManyRequests(OAuthError):
    """More registration requests from this address than its window allows: 429 with
    Retry-After (RFC 6585 section 4)."""

    error = "too_many_requests"
    status = 429

    def __init__(self, retry_after: float) -> None:
        seconds = max(1, int(retry_after + 0.999))
        super().__init__(
            f"too many registration requests from this address; retry in {seconds} s",
            headers={"Retry-After": str(seconds)},
        )


async def _limit(request: Request, found: Services) -> None:
    """Count this request against its address's registration rate limit, or refuse it."""
    settings = found.settings
    verdict = await take_request(
        found.store,
        rate_key("register", client_address(request)),
        found.clock(),
        settings.registration_rate_limit,
        settings.registration_rate_window,
    )
    if not verdict.allowed:
        raise TooManyRequests(verdict.retry_after)


def _bearer(request: Request) -> str | None:
    """The Bearer token of the Authorization header (RFC 6750 section 2.1), None without one."""
    authorizations = request.headers.getlist("authorization")
    if not authorizations:
        return None
    try:
        scheme, token = presented_token(authorizations)
    except VerificationError:
        raise InvalidToken(ONE_BEARER) from None
    if scheme != BEARER:
        raise InvalidToken(ONE_BEARER)
    return token


def _required_bearer(request: Request) -> str:
    token = _bearer(request)
    if token is None:
        raise InvalidToken("a registration access token is required")
    return token


async def _metadata(request: Request) -> dict[str, Any]:
    """The JSON object of the request body (RFC 7591 section 3.1)."""
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type != JSON_TYPE:
        raise InvalidRequest(f"the content type must be {JSON_TYPE}")
    try:
        document = json.loads((await request.body()).decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise InvalidRequest("the request body is not valid JSON") from None
    if not isinstance(document, dict):
        raise InvalidRequest("the client metadata must be a JSON object")
    return document


def _context(request: Request, found: Services) -> AdminContext:
    """The operations' context, acting as ``registration:<address>``."""
    return AdminContext(
        found.store,
        found.settings,
        actor=f"registration:{client_address(request)}",
        clock=found.clock,
        notifier=found.notifier,
        ring=found.keys,
    )


async def register(request: Request) -> Response:
    """RFC 7591 section 3.1 and 3.2.1: 201 with the client's metadata, its client_id, its
    secret (when its method needs one), its registration access token and URI."""
    found = services(request)
    await _limit(request, found)
    token = _bearer(request)
    metadata = await _metadata(request)
    done = await register_client(_context(request, found), metadata, token)
    document = client_metadata(done.client, found.settings.issuer)
    if done.client_secret is not None:
        document["client_secret"] = done.client_secret
    document["registration_access_token"] = done.registration_access_token
    return json_response(document, status=201, headers=NO_STORE)


async def configuration(request: Request) -> Response:
    """RFC 7592 section 2: read (GET), replace (PUT) or delete (DELETE) a registration."""
    found = services(request)
    await _limit(request, found)
    token = _required_bearer(request)
    client_id = request.path_params["client_id"]
    ctx = _context(request, found)
    if request.method == "DELETE":
        await delete_registration(ctx, client_id, token)
        return Response(status_code=204, headers=NO_STORE)
    if request.method == "PUT":
        metadata = await _metadata(request)
        client = await replace_registration(ctx, client_id, token, metadata)
    else:
        client = await registered(ctx, client_id, token)
    return json_response(client_metadata(client, found.settings.issuer), headers=NO_STORE)
