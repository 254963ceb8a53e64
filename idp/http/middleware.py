"""Plain ASGI middleware: request ids, body limits, last-resort errors, proxies, HSTS."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import secrets
from collections.abc import Sequence
from typing import Protocol

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from idp.http.direct import send_answer
from idp.http.html import failure_page
from idp.http.responses import JSON_TYPE, NO_STORE, Answer, error_body, header_pairs, json_bytes
from idp.store.base import StoreUnavailable

log = logging.getLogger("idp.http")

MAX_BODY_BYTES = 64 * 1024
BODY_READ_TIMEOUT = 10.0
RETRY_AFTER_SECONDS = "5"


class BodyTooLarge(Exception):
    """The request body passed MAX_BODY_BYTES."""


class BodyTimedOut(Exception):
    """The client did not send its whole request body within the read timeout."""


class Limits(Protocol):
    """The body limits a request is held to."""

    @property
    def max_body(self) -> int: ...

    @property
    def read_timeout(self) -> float: ...


def _json_answer(status: int, body: dict[str, str], headers: dict[str, str]) -> Answer:
    return Answer(
        status,
        [("content-type", JSON_TYPE), *header_pairs({**NO_STORE, **headers})],
        json_bytes(body),
    )


def too_large_answer(limit: int) -> Answer:
    """413 for a body over ``limit`` bytes; the connection is closed after it."""
    body = error_body("invalid_request", f"request body larger than {limit} bytes")
    return _json_answer(413, body, {"Connection": "close"})


def timed_out_answer() -> Answer:
    """408 for a body that did not arrive in time (RFC 9110 section 15.5.9); closed after."""
    body = error_body("invalid_request", "request body not received in time")
    return _json_answer(408, body, {"Connection": "close"})


def unavailable_answer(request_id: str) -> Answer:
    """503 ``temporarily_unavailable`` with Retry-After (RFC 6749 section 4.1.2.1)."""
    body = error_body(
        "temporarily_unavailable", "the store is unavailable; retry later", request_id=request_id
    )
    return _json_answer(503, body, {"Retry-After": RETRY_AFTER_SECONDS, "X-Request-Id": request_id})


def unexpected_answer(request_id: str) -> Answer:
    """500 with a generic body carrying the request id, never a stack trace."""
    body = error_body("server_error", "unexpected error", request_id=request_id)
    return _json_answer(500, body, {"X-Request-Id": request_id})


class RequestGuard:
    """Give each request an id, cap its body and its pace, and answer any failure in JSON
    (on a browser page, with the error page: :func:`idp.http.html.failure_page`).

    A body larger than ``max_body`` is answered 413; a body that has not arrived in full
    ``read_timeout`` seconds after the application first asked for it is answered 408
    (RFC 9110 section 15.5.9) and the connection closed, so a client that stalls or trickles
    its body byte by byte cannot hold a worker (granian times out request heads, not
    bodies). One deadline for the whole body, not one per read, which each byte would reset.

    A store outage becomes 503 with Retry-After (``temporarily_unavailable``, RFC 6749
    section 4.1.2.1); any other unexpected error is logged with the request id and answered
    with a generic body carrying that id, never a stack trace.
    """

    def __init__(
        self,
        app: ASGIApp,
        max_body: int = MAX_BODY_BYTES,
        read_timeout: float = BODY_READ_TIMEOUT,
    ) -> None:
        self.app = app
        self.max_body = max_body
        self.read_timeout = read_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = secrets.token_hex(8)
        scope.setdefault("state", {})["request_id"] = request_id
        id_header = (b"x-request-id", request_id.encode())
        started = False

        declared = _content_length(scope)
        if declared is not None and declared > self.max_body:
            await send_answer(send, too_large_answer(self.max_body))
            return

        received = 0
        body_done = False
        loop = asyncio.get_running_loop()
        deadline: float | None = None

        async def limited_receive() -> Message:
            nonlocal received, body_done, deadline
            if body_done:
                # Past the body, receive() waits for the disconnect: that may take long.
                return await receive()
            if deadline is None:
                deadline = loop.time() + self.read_timeout
            try:
                # A timer on this task, not a new task per read as wait_for would make.
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                raise BodyTimedOut from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body:
                    raise BodyTooLarge
                body_done = not message.get("more_body", False)
            else:
                body_done = True
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message["headers"] = [*message.get("headers", []), id_header]
            await send(message)

        try:
            await self.app(scope, limited_receive, tracked_send)
        except Exception as exc:
            answer = failure_answer(exc, request_id, scope.get("path"), self)
            if started:
                return
            shown = failure_page(scope, answer.status, request_id)
            if shown is None:
                await send_answer(send, answer)
                return
            kept = {"retry-after", "x-request-id"}
            shown.headers.update({k: v for k, v in answer.headers if k in kept})
            await shown(scope, receive, send)


def failure_answer(exc: Exception, request_id: str, path: str | None, limits: Limits) -> Answer:
    """What a request that raised ``exc`` gets, logged once (never with a secret).

    A body too large or too slow, a store outage, or anything else (logged with its
    stack trace under the request id, answered without it).
    """
    if isinstance(exc, BodyTooLarge):
        return too_large_answer(limits.max_body)
    if isinstance(exc, BodyTimedOut):
        log.info("request %s: body not received within %s s", request_id, limits.read_timeout)
        return timed_out_answer()
    if isinstance(exc, StoreUnavailable):
        log.warning("request %s: store unavailable: %s", request_id, exc)
        return unavailable_answer(request_id)
    log.error("request %s: unexpected error on %s", request_id, path, exc_info=exc)
    return unexpected_answer(request_id)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def is_trusted(
    host: str | None, trusted: Sequence[ipaddress.IPv4Network | ipaddress.IPv6Network]
) -> bool:
    """Whether ``host`` is an address inside one of the ``trusted`` proxy networks."""
    if not host:
        return False
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return any(address in network for network in trusted)


def forwarded_client(
    peer: str,
    forwarded_for: str,
    trusted: Sequence[ipaddress.IPv4Network | ipaddress.IPv6Network],
) -> str | None:
    """The client address X-Forwarded-For names behind trusted proxies: the last hop that is
    not a trusted proxy, when ``peer`` is one; None when the header is not to be believed."""
    if not is_trusted(peer, trusted):
        return None
    hops = [h.strip() for h in forwarded_for.split(",") if h.strip()]
    while hops and is_trusted(hops[-1], trusted):
        hops.pop()
    return hops[-1] if hops else None


class TrustedProxies:
    """Believe X-Forwarded-For and X-Forwarded-Proto only from the configured proxies."""

    def __init__(
        self,
        app: ASGIApp,
        trusted: Sequence[ipaddress.IPv4Network | ipaddress.IPv6Network],
    ) -> None:
        self.app = app
        self.trusted = tuple(trusted)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.trusted:
            client = scope.get("client")
            if client and is_trusted(client[0], self.trusted):
                headers = dict(scope.get("headers", []))
                forwarded_for = headers.get(b"x-forwarded-for", b"").decode("latin-1")
                hop = forwarded_client(client[0], forwarded_for, self.trusted)
                if hop is not None:
                    scope["client"] = (hop, 0)
                proto = headers.get(b"x-forwarded-proto", b"").decode("latin-1").strip().lower()
                if proto in ("http", "https"):
                    scope["scheme"] = proto
        await self.app(scope, receive, send)


class StrictTransportSecurity:
    """Add ``Strict-Transport-Security: max-age=N`` to every answer (RFC 6797 section 6.1).

    Installed only for an https issuer: browsers then refuse plain http to this host for
    ``max_age`` seconds, so a network attacker cannot strip TLS from a later visit.
    """

    def __init__(self, app: ASGIApp, max_age: int) -> None:
        self.app = app
        self.header = (b"strict-transport-security", f"max-age={max_age}".encode())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_header(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), self.header]
            await send(message)

        await self.app(scope, receive, send_with_header)
