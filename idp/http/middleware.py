"""Plain ASGI middleware: request ids, body limits, last-resort errors, proxies, HSTS."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import secrets
from collections.abc import Sequence

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from idp.http.responses import NO_STORE, error_body, json_bytes
from idp.store.base import StoreUnavailable

log = logging.getLogger("idp.http")

MAX_BODY_BYTES = 64 * 1024
BODY_READ_TIMEOUT = 10.0
RETRY_AFTER_SECONDS = "5"


class BodyTooLarge(Exception):
    """The request body passed MAX_BODY_BYTES."""


class BodyTimedOut(Exception):
    """The client did not send its whole request body within the read timeout."""


async def _send_json(
    send: Send, status: int, body: dict[str, str], headers: dict[str, str] | None = None
) -> None:
    raw = json_bytes(body)
    head = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(raw)).encode()),
        *((k.lower().encode(), v.encode()) for k, v in {**NO_STORE, **(headers or {})}.items()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": head})
    await send({"type": "http.response.body", "body": raw})


class RequestGuard:
    """Give each request an id, cap its body and its pace, and answer any failure in JSON.

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
            await _send_json(send, 413, _too_large(self.max_body), {"Connection": "close"})
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
        except BodyTooLarge:
            if not started:
                await _send_json(send, 413, _too_large(self.max_body), {"Connection": "close"})
        except BodyTimedOut:
            log.info("request %s: body not received within %s s", request_id, self.read_timeout)
            if not started:
                body = error_body("invalid_request", "request body not received in time")
                await _send_json(send, 408, body, {"Connection": "close"})
        except StoreUnavailable as exc:
            log.warning("request %s: store unavailable: %s", request_id, exc)
            if not started:
                await _send_json(
                    send,
                    503,
                    error_body(
                        "temporarily_unavailable",
                        "the store is unavailable; retry later",
                        request_id=request_id,
                    ),
                    {"Retry-After": RETRY_AFTER_SECONDS, "X-Request-Id": request_id},
                )
        except Exception:
            log.exception("request %s: unexpected error on %s", request_id, scope.get("path"))
            if not started:
                await _send_json(
                    send,
                    500,
                    error_body("server_error", "unexpected error", request_id=request_id),
                    {"X-Request-Id": request_id},
                )


def _too_large(limit: int) -> dict[str, str]:
    return error_body("invalid_request", f"request body larger than {limit} bytes")


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class TrustedProxies:
    """Believe X-Forwarded-For and X-Forwarded-Proto only from the configured proxies."""

    def __init__(
        self,
        app: ASGIApp,
        trusted: Sequence[ipaddress.IPv4Network | ipaddress.IPv6Network],
    ) -> None:
        self.app = app
        self.trusted = tuple(trusted)

    def _is_trusted(self, host: str | None) -> bool:
        if not host:
            return False
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in network for network in self.trusted)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.trusted:
            client = scope.get("client")
            if client and self._is_trusted(client[0]):
                headers = dict(scope.get("headers", []))
                forwarded_for = headers.get(b"x-forwarded-for", b"").decode("latin-1")
                hops = [h.strip() for h in forwarded_for.split(",") if h.strip()]
                while hops and self._is_trusted(hops[-1]):
                    hops.pop()
                if hops:
                    scope["client"] = (hops[-1], 0)
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
