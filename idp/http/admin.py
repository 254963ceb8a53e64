"""Admin API plumbing: bearer authentication, error answers, audit of refusals, routing.

An admin endpoint is described by an :class:`Operation` (method, path, body fields,
answers); idp/http/admin_endpoints.py holds the table, from which both the routes and the
OpenAPI document are made. Every refused call (401, 403, 4xx) is written to the audit trail
with outcome ``failure``; the token itself is never recorded or logged. Calls refused before
the caller is authenticated are counted, one row per source address, actor and minute, so
that nobody without an admin token can grow the table at will.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from idp.http.json_body import Field
from idp.http.responses import NO_STORE, json_response, oauth_error_response
from idp.http.services import Services, services
from idp.keyring.lifecycle import KeyRingError
from idp.keyring.material import KeyMaterialError
from idp.management import InvalidUser
from idp.oauth.bearer import (
    BearerError,
    InvalidToken,
    active_access_token,
    bearer_token,
    require_scope,
)
from idp.oauth.errors import OAuthError
from idp.oauth.registration import ADMIN_SCOPE, InvalidClientMetadata, admin_audience
from idp.sso.throttle import ip_key
from idp.store.base import AuditEntry, Conflict, NotFound, StoreUnavailable
from idp.verify.result import VerifiedToken

log = logging.getLogger("idp.admin")

ANONYMOUS = "anonymous"
ANY_METHOD = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
MAX_AUDITED_PATH = 200


class AdminError(OAuthError):
    """A refused admin call that is not about the token: unknown id, clash, bad metadata."""

    def __init__(self, error: str, status: int, description: str) -> None:
        super().__init__(description)
        self.error = error
        self.status = status


@dataclass(frozen=True)
class AdminCall:
    """One authenticated admin request: the request, the services, and who is calling."""

    request: Request
    services: Services
    actor: str
    subject: str | None = None

    def param(self, name: str) -> str:
        value: str = self.request.path_params[name]
        return value


Handler = Callable[[AdminCall], Awaitable[Response]]


@dataclass(frozen=True)
class Operation:
    """One admin endpoint: how to call it, what it does, what it answers."""

    method: str
    path: str
    action: str
    summary: str
    handler: Handler
    status: int = 200
    response: str | None = None
    body: tuple[Field, ...] | None = None
    body_required: bool = True
    errors: tuple[int, ...] = (400, 401, 403)
    authenticated: bool = True


def answer(document: Any, status: int = 200) -> Response:
    """A JSON answer that is never cached."""
    return json_response(document, status, dict(NO_STORE))


# -- authentication -----------------------------------------------------------------------


async def authenticate(request: Request, found: Services) -> VerifiedToken:
    """Accept only our own access tokens for the admin audience carrying ``idp:admin``.

    The token must be in good standing (not revoked, its user enabled: the same check as
    UserInfo and introspection), and its client must still exist and still hold the scope,
    so deleting an admin client (or taking the scope away) shuts its tokens out at once.
    """
    token = bearer_token(request.headers.getlist("authorization"))
    issuer = found.settings.issuer
    active = await active_access_token(
        token,
        found.keys.ring.verification,
        found.store,
        issuer=issuer,
        audience=admin_audience(issuer),
        now=found.clock(),
    )
    verified = active.token
    require_scope(verified, ADMIN_SCOPE)
    require_client_subject(verified)
    client = await found.store.get_client(verified.client_id)
    if client is None:
        raise InvalidToken("the token's client no longer exists", client_id=verified.client_id)
    if ADMIN_SCOPE not in client.scope:
        raise InvalidToken(
            f"the token's client no longer holds the scope {ADMIN_SCOPE}",
            client_id=verified.client_id,
        )
    return verified


class UserTokenRefused(InvalidToken):
    """A token issued for a person (authorization_code, refresh_token) at the admin API."""

    def __init__(self, verified: VerifiedToken) -> None:
        super().__init__(
            "the admin API takes only a client's own token (client_credentials), "
            "not one issued for a user",
            client_id=verified.client_id,
        )
        self.subject = verified.subject


def require_client_subject(verified: VerifiedToken) -> None:
    """Refuse a token whose subject is a user rather than the client itself.

    Admin rights belong to machine clients: a client_credentials token has ``sub`` equal
    to its ``client_id`` and no ``auth_time`` (RFC 9068 section 2.2); a user's has both.
    """
    if verified.subject != verified.client_id or "auth_time" in verified.claims:
        raise UserTokenRefused(verified)


def _as_protocol_error(exc: Exception) -> OAuthError | None:
    """The error answer for an exception a handler may raise; None if it is unexpected."""
    if isinstance(exc, OAuthError):
        return exc
    if isinstance(exc, NotFound):
        return AdminError("not_found", 404, str(exc))
    if isinstance(exc, Conflict):
        return AdminError("conflict", 409, str(exc))
    if isinstance(exc, KeyRingError):
        return AdminError("conflict", 409, str(exc))
    if isinstance(exc, KeyMaterialError):
        # The ring holds keys this server's key-encryption key cannot open (a rewrap).
        return AdminError("temporarily_unavailable", 503, str(exc))
    if isinstance(exc, InvalidClientMetadata):
        return AdminError("invalid_client_metadata", 400, str(exc))
    if isinstance(exc, InvalidUser):
        return AdminError("invalid_request", 400, str(exc))
    return None


@dataclass(frozen=True)
class Refusal:
    """A refused admin call as the audit trail records it."""

    actor: str
    subject: str | None
    action: str
    target: str
    authenticated: bool


def source_address(request: Request) -> str:
    """The caller's address as the login throttle counts it: IPv4, or the IPv6 /64."""
    return ip_key(request.client.host if request.client else "").removeprefix("ip:")


def failure_bucket(actor: str, source: str, now: float) -> str:
    """The counting bucket of a refused unauthenticated call: one per actor, source, minute."""
    return f"admin.refused:{actor}:{source}:{int(now // 60)}"


async def _record_failure(
    found: Services, request: Request, refusal: Refusal, error: OAuthError
) -> None:
    """Write the refused call to the audit trail (never the token); a store outage is logged.

    A caller that authenticated gets a row per call; any other refusal is counted in the
    row of its bucket (``failure_bucket``), so unauthenticated callers cannot flood the table.
    """
    now = found.clock()
    source = source_address(request)
    entry = AuditEntry(
        now,
        refusal.actor,
        refusal.action,
        refusal.target,
        "failure",
        detail={
            "method": request.method,
            "path": request.url.path[:MAX_AUDITED_PATH],
            "status": error.status,
            "error": error.error,
            "source": source,
        },
        subject=refusal.subject,
    )
    try:
        if refusal.authenticated:
            await found.store.record_audit(entry)
        else:
            await found.store.count_audit(entry, failure_bucket(refusal.actor, source, now))
    except StoreUnavailable as exc:
        log.warning(
            "could not audit a refused admin call (%s %s): %s", refusal.action, refusal.target, exc
        )


def _target(operation_path: str, request: Request) -> str:
    for name in ("kid", "client_id", "user_id"):
        if name in request.path_params:
            return str(request.path_params[name])[:MAX_AUDITED_PATH]
    return operation_path.rsplit("/", 1)[-1] or "admin"


def endpoint(operation: Operation) -> Callable[[Request], Awaitable[Response]]:
    """The Starlette endpoint for an operation: authenticate, run, answer, audit refusals."""

    async def run(request: Request) -> Response:
        found = services(request)
        actor, subject, authenticated = ANONYMOUS, None, False
        try:
            if operation.authenticated:
                verified = await authenticate(request, found)
                actor, subject, authenticated = (
                    f"admin:{verified.client_id}",
                    verified.subject,
                    True,
                )
            return await operation.handler(AdminCall(request, found, actor, subject))
        except Exception as exc:
            error = _as_protocol_error(exc)
            if error is None:
                raise
            if isinstance(error, BearerError) and error.client_id:
                actor = f"admin:{error.client_id}"
            if isinstance(error, UserTokenRefused):
                subject = error.subject
            target = _target(operation.path, request)
            refusal = Refusal(actor, subject, operation.action, target, authenticated)
            await _record_failure(found, request, refusal, error)
            return oauth_error_response(error)

    run.__name__ = operation.action.replace(".", "_")
    return run


def _fallback(routes: Sequence[Route]) -> Callable[[Request], Awaitable[Response]]:
    """Unknown admin paths and methods: authenticated and audited like the rest, then 404/405."""

    async def unknown(call: AdminCall) -> Response:
        scope = call.request.scope
        allowed: set[str] = set()
        for route in routes:
            if route.path_regex.match(scope["path"]) and route.methods:
                allowed |= route.methods
        if allowed:
            raise _MethodNotAllowed(sorted(allowed))
        raise AdminError("not_found", 404, "no such admin endpoint")

    operation = Operation("*", "/admin", "admin.request", "", unknown)
    return endpoint(operation)


class _MethodNotAllowed(AdminError):
    def __init__(self, allowed: Sequence[str]) -> None:
        super().__init__("method_not_allowed", 405, "method not allowed")
        self.headers = {"Allow": ", ".join(allowed)}


def admin_routes(operations: Sequence[Operation]) -> list[Route]:
    """The Starlette routes of the admin API, ending with the audited catch-all."""
    grouped: dict[str, list[Operation]] = {}
    for operation in operations:
        grouped.setdefault(operation.path, []).append(operation)
    routes: list[Route] = []
    for path, group in grouped.items():
        by_method: Mapping[str, Callable[[Request], Awaitable[Response]]] = {
            op.method: endpoint(op) for op in group
        }
        routes.append(Route(path, _dispatch(by_method), methods=list(by_method)))
    known = list(routes)
    routes.append(Route("/admin/{rest:path}", _fallback(known), methods=ANY_METHOD))
    routes.append(Route("/admin", _fallback(known), methods=ANY_METHOD))
    return routes


def _dispatch(
    by_method: Mapping[str, Callable[[Request], Awaitable[Response]]],
) -> Callable[[Request], Awaitable[Response]]:
    async def dispatch(request: Request) -> Response:
        method = "GET" if request.method == "HEAD" else request.method
        return await by_method[method](request)

    return dispatch
