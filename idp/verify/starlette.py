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

Protected Resource Metadata (RFC 9728): :func:`resource_metadata_route` serves an API's
:class:`~idp.verify.resource_metadata.ResourceMetadata` at its well-known path, and given
``resource_metadata`` the decorator and the middleware name that document's URL in every
challenge (section 5.1); the middleware then also serves the document itself, without a token.
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
from starlette.routing import Route
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
from idp.verify.resource_metadata import ResourceMetadata
from idp.verify.result import VerifiedToken
from idp.verify.verifier import TokenVerifier

STATE_KEY = "access_token"
METADATA_MAX_AGE = 3600
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
    resource_metadata: str | None = None,
) -> Response:
    """The answer to a refused request: status, challenge, and a small JSON body.

    The challenge is DPoP's (RFC 9449 section 7.1) for a ``dpop`` request or a DPoP refusal
    (and, with ``dpop``, for a request with no token at all); it names ``resource_metadata``,
    the URL of the resource's metadata, when given (RFC 9728 section 5.1).
    """
    headers = {"Cache-Control": "no-store"}
    named = resource_metadata
    if error is None:
        if dpop:
            value = challenge(realm, scheme="DPoP", algs=DPOP_ALGS, resource_metadata=named)
        else:
            value = challenge(realm, resource_metadata=named)
        headers["WWW-Authenticate"] = value
        return Response(status_code=401, headers=headers)
    if error.status == 503:
        headers["Retry-After"] = str(max(1, round(retry_after)))
    elif dpop or isinstance(error, DpopError):
        headers["WWW-Authenticate"] = challenge(
            realm, error, scheme="DPoP", algs=DPOP_ALGS, resource_metadata=named
        )
        if isinstance(error, UseDpopNonce):
            headers["DPoP-Nonce"] = error.nonce
    else:
        headers["WWW-Authenticate"] = challenge(realm, error, resource_metadata=named)
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


def metadata_url_of(resource_metadata: ResourceMetadata | str | None) -> str | None:
    """The URL a challenge names: the metadata's own, or one given as is."""
    if isinstance(resource_metadata, ResourceMetadata):
        return resource_metadata.url
    return resource_metadata


def resource_metadata_response(
    metadata: ResourceMetadata, max_age: int = METADATA_MAX_AGE
) -> Response:
    """The metadata document as RFC 9728 section 3.2 answers it: 200, ``application/json``.

    Public and cacheable for ``max_age`` seconds, and readable from any origin: it holds
    nothing secret, and a browser-based client discovers with it too.
    """
    return Response(
        json.dumps(metadata.document()),
        media_type="application/json",
        headers={
            "Cache-Control": f"public, max-age={max_age}",
            "Access-Control-Allow-Origin": "*",
            "X-Content-Type-Options": "nosniff",
        },
    )


def resource_metadata_route(metadata: ResourceMetadata, max_age: int = METADATA_MAX_AGE) -> Route:
    """A route serving ``metadata`` at its well-known path (RFC 9728 section 3.1).

    Add it to the application at the root of the resource's host: the path is derived from
    the resource identifier (``https://api.example/notes`` is served at
    ``/.well-known/oauth-protected-resource/notes``), never given separately.
    """

    async def document(request: Request) -> Response:
        return resource_metadata_response(metadata, max_age)

    return Route(metadata.path, document, methods=["GET"], name="oauth-protected-resource")


def requires_token(
    verifier: TokenVerifier,
    scopes: Collection[str] = (),
    realm: str | None = None,
    base_url: str | None = None,
    resource_metadata: ResourceMetadata | str | None = None,
) -> Callable[[Endpoint], Callable[[Request], Awaitable[Response]]]:
    """A decorator for a Starlette endpoint that lets only requests with a valid token in.

    The endpoint finds the token at ``request.state.access_token``; ``scopes`` must all have
    been granted. Sync endpoints run in the thread pool, as Starlette runs them. DPoP proofs
    are checked against ``base_url`` and the path when given, else the request's own URL.
    Challenges name ``resource_metadata``'s URL when given (RFC 9728 section 5.1).
    """
    required = tuple(scopes)
    named = metadata_url_of(resource_metadata)

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
                return error_response(
                    None, realm, dpop=verifier.require_dpop, resource_metadata=named
                )
            except VerificationError as exc:
                dpop = uses_dpop(request.headers)
                return error_response(
                    exc, realm, verifier.refetch_cooldown, dpop=dpop, resource_metadata=named
                )
            setattr(request.state, STATE_KEY, token)
            if is_async:
                return await endpoint(request)  # type: ignore[misc,no-any-return]
            return await run_in_threadpool(endpoint, request)  # type: ignore[arg-type]

        return guarded

    return decorate


class BearerAuthMiddleware:
    """Pure ASGI middleware that refuses every HTTP or WebSocket request without a valid token.

    Lifespan events pass through. A refused WebSocket is closed with code 1008 (policy
    violation) before it is accepted. Given a :class:`ResourceMetadata`, the middleware serves
    it at its well-known path to anyone (RFC 9728 section 3) and names its URL in every
    challenge (section 5.1); given a URL, it only names that.
    """

    def __init__(
        self,
        app: ASGIApp,
        verifier: TokenVerifier,
        scopes: Collection[str] = (),
        realm: str | None = None,
        base_url: str | None = None,
        resource_metadata: ResourceMetadata | str | None = None,
    ) -> None:
        self.app = app
        self.verifier = verifier
        self.scopes = tuple(scopes)
        self.realm = realm
        self.base_url = base_url
        self.metadata_url = metadata_url_of(resource_metadata)
        self.metadata = (
            resource_metadata if isinstance(resource_metadata, ResourceMetadata) else None
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        if self.metadata is not None and _asks_for(self.metadata, scope):
            await resource_metadata_response(self.metadata)(scope, receive, send)
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
        dpop = uses_dpop(headers) or (refusal is None and self.verifier.require_dpop)
        response = error_response(
            refusal,
            self.realm,
            self.verifier.refetch_cooldown,
            dpop=dpop,
            resource_metadata=self.metadata_url,
        )
        await response(scope, receive, send)


def _asks_for(metadata: ResourceMetadata, scope: Scope) -> bool:
    """Whether the request reads the metadata document."""
    return (
        scope["type"] == "http"
        and scope.get("method") in ("GET", "HEAD")
        and scope["path"] == metadata.path
    )
