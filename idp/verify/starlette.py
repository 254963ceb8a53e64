"""Starlette integration: bearer-token checks as a route decorator or as ASGI middleware.

Answers follow RFC 6750 section 3: 401 with a bare ``Bearer`` challenge when no token was
sent, 401 ``invalid_token``, 400 ``invalid_request`` for a malformed Authorization header,
403 ``insufficient_scope`` with the ``scope`` needed; 503 ``temporarily_unavailable`` when
the issuer's keys cannot be had. The verified token is put on ``request.state.access_token``
(``scope["state"]["access_token"]``). Needs starlette: ``pip install 'idp[verify-starlette]'``.

DPoP (RFC 9449 section 7): a request may send its token as ``Authorization: DPoP <token>``
with a ``DPoP`` proof header; the proof is checked for the request's method and URL (the URL
as the client sees it: give ``base_url`` when a proxy changes scheme or host). A DPoP-bound
token sent as a bearer token is refused; refusals of DPoP requests carry a ``DPoP`` challenge.
"""

from __future__ import annotations

import functools
import inspect
import json
import re
from collections.abc import Awaitable, Callable, Collection
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import URL, Headers
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from idp.verify.dpop import DPOP_ALGS, only_proof
from idp.verify.errors import (
    DpopError,
    InvalidDpopProof,
    InvalidRequest,
    MissingToken,
    UseDpopNonce,
    VerificationError,
    challenge,
)
from idp.verify.result import VerifiedToken
from idp.verify.verifier import TokenVerifier

STATE_KEY = "access_token"
# RFC 6750 section 2.1: "Bearer" 1*SP b64token (b64token is RFC 7235's token68).
_B64TOKEN = re.compile(r" *([A-Za-z0-9\-._~+/]+=*) *")


def bearer_token(headers: Headers) -> str:
    """The token of the request's one ``Authorization: Bearer`` header (RFC 6750 section 2.1).

    Raises MissingToken when there is none or it uses another scheme (RFC 6750 section 3.1:
    no error information then), InvalidRequest when there are several or the Bearer
    credential is not in b64token syntax.
    """
    scheme, token = presented_token(headers)
    if scheme != "bearer":
        raise MissingToken()
    return token


def presented_token(headers: Headers) -> tuple[str, str]:
    """The scheme (``bearer`` or ``dpop``, lower-case) and token of the request's one
    Authorization header (RFC 6750 section 2.1, RFC 9449 section 7.1); errors as
    :func:`bearer_token`."""
    values = headers.getlist("authorization")
    if not values:
        raise MissingToken()
    if len(values) > 1:
        raise InvalidRequest("more than one Authorization header")
    scheme, _, credentials = values[0].partition(" ")
    scheme = scheme.lower()
    if scheme not in ("bearer", "dpop"):
        raise MissingToken()
    match = _B64TOKEN.fullmatch(credentials)
    if match is None:
        named = "Bearer" if scheme == "bearer" else "DPoP"
        raise InvalidRequest(f"the Authorization header is not a {named} token")
    return scheme, match.group(1)


def uses_dpop(headers: Headers) -> bool:
    """Whether the request sends its token with the DPoP scheme."""
    values = headers.getlist("authorization")
    return len(values) == 1 and values[0].partition(" ")[0].lower() == "dpop"


def error_response(
    error: VerificationError | None,
    realm: str | None,
    retry_after: float = 30,
    *,
    dpop: bool = False,
) -> Response:
    """The answer to a refused request: status, challenge, and a small JSON body; the
    challenge is DPoP's (RFC 9449 section 7.1) for a ``dpop`` request or a DPoP refusal."""
    headers = {"Cache-Control": "no-store"}
    if error is None:
        headers["WWW-Authenticate"] = challenge(realm)
        return Response(status_code=401, headers=headers)
    if error.status == 503:
        headers["Retry-After"] = str(max(1, round(retry_after)))
    elif dpop or isinstance(error, DpopError):
        headers["WWW-Authenticate"] = challenge(realm, error, scheme="DPoP", algs=DPOP_ALGS)
        if isinstance(error, UseDpopNonce):
            headers["DPoP-Nonce"] = error.nonce
    else:
        headers["WWW-Authenticate"] = challenge(realm, error)
    body = json.dumps({"error": error.error, "error_description": error.description})
    return Response(body, status_code=error.status, headers=headers, media_type="application/json")


async def authenticate(
    headers: Headers,
    verifier: TokenVerifier,
    scopes: Collection[str] = (),
    *,
    method: str | None = None,
    url: str | None = None,
) -> VerifiedToken:
    """The verified token of a request, or MissingToken / VerificationError.

    With the DPoP scheme the request's one ``DPoP`` header is the proof, checked for
    ``method`` and ``url`` (RFC 9449 section 7.1).
    """
    scheme, token = presented_token(headers)
    if scheme == "bearer":
        return await verifier.averify(token, scopes=scopes)
    proof = only_proof(headers.getlist("dpop"))
    if proof is None:
        raise InvalidDpopProof("a DPoP proof is required")
    return await verifier.averify(token, scopes=scopes, dpop_proof=proof, method=method, url=url)


def request_url(scope: Scope, base_url: str | None) -> str:
    """The URL a client addressed: ``base_url`` and the path when given, else the request's."""
    if base_url is not None:
        path: str = scope["path"]
        return base_url.rstrip("/") + path
    return str(URL(scope=scope))


Endpoint = Callable[[Request], Awaitable[Response] | Response]


def requires_token(
    verifier: TokenVerifier,
    scopes: Collection[str] = (),
    realm: str | None = None,
    base_url: str | None = None,
) -> Callable[[Endpoint], Callable[[Request], Awaitable[Response]]]:
    """A decorator for a Starlette endpoint that lets only requests with a valid token in.

    The endpoint finds the token at ``request.state.access_token``; ``scopes`` must all have
    been granted. Sync endpoints run in the thread pool, as Starlette runs them. DPoP proofs
    are checked against ``base_url`` and the path when given, else the request's own URL.
    """
    required = tuple(scopes)

    def decorate(endpoint: Endpoint) -> Callable[[Request], Awaitable[Response]]:
        is_async = inspect.iscoroutinefunction(endpoint)

        @functools.wraps(endpoint)
        async def guarded(request: Request) -> Response:
            try:
                token = await authenticate(
                    request.headers,
                    verifier,
                    required,
                    method=request.method,
                    url=request_url(request.scope, base_url),
                )
            except MissingToken:
                return error_response(None, realm)
            except VerificationError as exc:
                dpop = uses_dpop(request.headers)
                return error_response(exc, realm, verifier.refetch_cooldown, dpop=dpop)
            setattr(request.state, STATE_KEY, token)
            if is_async:
                return await endpoint(request)  # type: ignore[misc,no-any-return]
            return await run_in_threadpool(endpoint, request)  # type: ignore[arg-type]

        return guarded

    return decorate


class BearerAuthMiddleware:
    """Pure ASGI middleware that refuses every HTTP or WebSocket request without a valid token.

    Lifespan events pass through. A refused WebSocket is closed with code 1008 (policy
    violation) before it is accepted.
    """

    def __init__(
        self,
        app: ASGIApp,
        verifier: TokenVerifier,
        scopes: Collection[str] = (),
        realm: str | None = None,
        base_url: str | None = None,
    ) -> None:
        self.app = app
        self.verifier = verifier
        self.scopes = tuple(scopes)
        self.realm = realm
        self.base_url = base_url

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        refusal: VerificationError | None
        headers = Headers(scope=scope)
        try:
            token = await authenticate(
                headers,
                self.verifier,
                self.scopes,
                method=scope.get("method", "GET"),
                url=request_url(scope, self.base_url),
            )
        except MissingToken:
            refusal = None
        except VerificationError as exc:
            refusal = exc
        else:
            state: dict[str, Any] = scope.setdefault("state", {})
            state[STATE_KEY] = token
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        response = error_response(
            refusal, self.realm, self.verifier.refetch_cooldown, dpop=uses_dpop(headers)
        )
        await response(scope, receive, send)
