"""Admin API plumbing: operations, error answers, audit of refusals, routing.

An admin endpoint is described by an :class:`Operation` (method, path, query and body
fields, answers); idp/http/admin/operations.py holds the table, from which both the routes
and the OpenAPI document are made. A handler reads its input, calls one :mod:`idp.admin`
operation with the call's :class:`~idp.admin.context.AdminContext`, and renders the outcome.
Every refused call (401, 403, 4xx) is written to the audit trail with outcome ``failure``;
the token itself is never recorded or logged. Calls refused before the caller is
authenticated are counted, one row per source address, actor and minute, so that nobody
without an admin token can grow the table at will.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from idp.admin.context import AdminContext, InvalidInput
from idp.http.admin.auth import UserTokenRefused, authenticate
from idp.http.bearer import bearer_refusal
from idp.http.json_body import Field, parse_text
from idp.http.responses import NO_STORE, json_response, oauth_error_response
from idp.http.services import Services, services
from idp.keyring.lifecycle import KeyRingError
from idp.keyring.material import KeyImportError, KeyMaterialError
from idp.oauth.errors import InvalidRequest, OAuthError
from idp.oauth.registration import InvalidClientMetadata
from idp.sso.throttle import ip_key
from idp.store.base import AuditEntry, Conflict, NotFound, StoreUnavailable
from idp.verify.errors import VerificationError

log = logging.getLogger("idp.admin")

ANONYMOUS = "anonymous"
ANY_METHOD = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
MAX_AUDITED_PATH = 200


class AdminError(OAuthError):
    """A refused admin call that is not about the token: unknown id, clash, bad input."""


def admin_error(
    error: str, status: int, description: str, headers: dict[str, str] | None = None
) -> AdminError:
    """An admin refusal answered as ``{"error": error, ...}`` with ``status``."""
    refused = AdminError(description, headers=headers)
    refused.error, refused.status = error, status
    return refused


# How each admin service error is answered (error code, status); the first match wins.
_ANSWERS: tuple[tuple[type[Exception], str, int], ...] = (
    (NotFound, "not_found", 404),
    (Conflict, "conflict", 409),
    (KeyRingError, "conflict", 409),
    (KeyImportError, "invalid_request", 400),
    # The ring holds keys this server's key-encryption key cannot open (after a rewrap).
    (KeyMaterialError, "temporarily_unavailable", 503),
    (InvalidClientMetadata, "invalid_client_metadata", 400),
    (InvalidInput, "invalid_request", 400),
)
CLASH_ERRORS = (400, 401, 403, 409)
ONE_ERRORS = (400, 401, 403, 404)
"""The refusals of an operation that makes something (409), or acts on one by id (404)."""


@dataclass(frozen=True)
class AdminCall:
    """One admin request: the request, the services, and who is calling."""

    request: Request
    services: Services
    actor: str
    subject: str | None = None

    def param(self, name: str) -> str:
        value: str = self.request.path_params[name]
        return value

    @property
    def admin(self) -> AdminContext:
        """The admin service's context for this call: the caller acts, this process serves."""
        found = self.services
        return AdminContext(
            found.store,
            found.settings,
            actor=self.actor,
            subject=self.subject,
            clock=found.clock,
            hasher=found.passwords.hash,
            notifier=found.notifier,
            ring=found.keys,
        )


Handler = Callable[[AdminCall], Awaitable[Response]]


@dataclass(frozen=True)
class Operation:
    """One admin endpoint: how to call it, what it does, what it answers.

    ``response`` names the answer's schema in the OpenAPI document; the first line of the
    handler's docstring is the operation's summary there.
    """

    method: str
    path: str
    action: str
    handler: Handler
    response: str | None = None
    status: int = 200
    body: tuple[Field, ...] | None = None
    body_required: bool = True
    errors: tuple[int, ...] = (400, 401, 403)
    authenticated: bool = True
    query: tuple[Field, ...] = ()

    @property
    def summary(self) -> str:
        return (self.handler.__doc__ or "").strip().split("\n", 1)[0]


def creating(
    path: str, action: str, handler: Handler, response: str, body: tuple[Field, ...]
) -> Operation:
    """A POST that makes something: 201 with it, 409 when it clashes with what is there."""
    return Operation("POST", path, action, handler, response, 201, body, errors=CLASH_ERRORS)


def changing(
    path: str,
    action: str,
    handler: Handler,
    response: str,
    body: tuple[Field, ...],
    errors: tuple[int, ...],
) -> Operation:
    """A PATCH of one thing by id: its changed form; 404 when there is no such thing."""
    return Operation("PATCH", path, action, handler, response, body=body, errors=errors)


def answer(document: Any, status: int = 200) -> Response:
    """A JSON answer that is never cached."""
    return json_response(document, status, dict(NO_STORE))


def no_content() -> Response:
    """A 204 answer that is never cached."""
    return Response(status_code=204, headers=dict(NO_STORE))


def read_query(request: Request, fields: Sequence[Field]) -> dict[str, Any]:
    """The query parameters ``fields`` allow, each once, checked like body members."""
    known = {f.name: f for f in fields}
    found: dict[str, Any] = {}
    for name, value in request.query_params.multi_items():
        field = known.get(name)
        if field is None:
            expected = ", ".join(known) or "none"
            raise InvalidRequest(f"unknown query parameter {name!r}; expected some of: {expected}")
        if name in found:
            raise InvalidRequest(f"query parameter {name!r} appears twice")
        found[name] = parse_text(field, value)
    return found


def _as_protocol_error(exc: Exception) -> OAuthError | None:
    """The error answer for an exception a handler may raise; None if it is unexpected."""
    if isinstance(exc, OAuthError):
        return exc
    if isinstance(exc, VerificationError):
        return bearer_refusal(exc)
    for kind, error, status in _ANSWERS:
        if isinstance(exc, kind):
            return admin_error(error, status, str(exc))
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
    for name in ("kid", "client_id", "user_id", "sid", "token_id"):
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
            if isinstance(exc, VerificationError) and exc.client_id:
                actor = f"admin:{exc.client_id}"
            if isinstance(exc, UserTokenRefused):
                subject = exc.subject
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
            allow = {"Allow": ", ".join(sorted(allowed))}
            raise admin_error("method_not_allowed", 405, "method not allowed", allow)
        raise admin_error("not_found", 404, "no such admin endpoint")

    operation = Operation("*", "/admin", "admin.request", unknown)
    return endpoint(operation)


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
