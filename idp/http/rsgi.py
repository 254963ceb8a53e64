"""Serving through granian's RSGI interface: the busiest endpoints natively, the rest as ASGI.

``idp serve`` runs granian with its RSGI interface (Rust Server Gateway Interface), which
hands a request over with fewer Python objects than ASGI: a scope with attributes, the
body by one await, and the whole answer by one call. The token, introspection, JWKS and
discovery endpoints are answered that way from the same work functions their ASGI endpoints call
(:func:`idp.http.token.token_answer` and friends), held to the same guarantees as the
ASGI middleware gives every other request (request id, body size and deadline, HSTS, the
failure answers of :mod:`idp.http.middleware`). Every other request goes to the Starlette
app unchanged through a small ASGI bridge, and the app's lifespan runs at worker start and
stop.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

from granian._granian import RSGIHTTPProtocol as HTTPProtocol
from granian._granian import RSGIProtocolClosed as ProtocolClosed
from granian._granian import RSGIProtocolError as ProtocolError
from granian.rsgi import Scope
from starlette.applications import Starlette
from starlette.types import Message

from idp.http.access_log import log_request
from idp.http.direct import ClientGone, ClientPost
from idp.http.discovery import metadata_answer
from idp.http.introspect import introspect_answer
from idp.http.jwks import jwks_answer
from idp.http.middleware import (
    MAX_BODY_BYTES,
    BodyTimedOut,
    BodyTooLarge,
    failure_answer,
    forwarded_client,
    too_large_answer,
)
from idp.http.responses import Answer, HeaderPairs
from idp.http.scheduling import batch_threads_started_before_loop
from idp.http.services import Services
from idp.http.token import token_answer

log = logging.getLogger("idp.http")

ASGI_VERSION = {"version": "3.0", "spec_version": "2.3"}

Route = Callable[[Scope, HTTPProtocol], Awaitable[Answer]]


class StartupFailed(Exception):
    """The app's lifespan start-up did not complete."""


class RsgiApp:
    """The token service as an RSGI application (granian's ``__rsgi__`` protocol)."""

    def __init__(self, app: Starlette) -> None:
        self.app = app
        self.services: Services = app.state.services
        self.lifespan = Lifespan(app)
        self.max_body = MAX_BODY_BYTES
        self.read_timeout = float(self.services.settings.body_read_timeout)
        settings = self.services.settings
        self.access_log = settings.log_format == "json"
        self.extra_headers: HeaderPairs = (
            [("strict-transport-security", f"max-age={settings.hsts_max_age}")]
            if settings.hsts
            else []
        )
        self.routes: dict[tuple[str, str], Route] = {
            ("POST", "/token"): self._token,
            ("POST", "/introspect"): self._introspect,
            ("GET", "/jwks.json"): self._jwks,
            ("GET", "/.well-known/openid-configuration"): self._metadata,
            ("GET", "/.well-known/oauth-authorization-server"): self._metadata,
        }

    def __rsgi_init__(self, loop: asyncio.AbstractEventLoop) -> None:
        """Run the app's start-up before the worker takes requests; exit 1 if it fails."""
        try:
            loop.run_until_complete(self.lifespan.startup())
        except Exception as exc:
            log.error("start-up failed: %s", exc, exc_info=exc)
            sys.exit(1)
        if self.services.settings.batch_io_threads:
            batch_threads_started_before_loop(loop)

    def __rsgi_del__(self, loop: asyncio.AbstractEventLoop) -> None:
        """Run the app's shut-down after the worker's last request."""
        loop.run_until_complete(self.lifespan.shutdown())

    async def __rsgi__(self, scope: Scope, protocol: HTTPProtocol) -> None:
        route = self.routes.get((scope.method, scope.path))
        if route is None:
            await serve_asgi(self.app, scope, protocol, self.lifespan.state)
            return
        started = time.perf_counter()
        request_id = secrets.token_hex(8)
        try:
            answer = await route(scope, protocol)
        except ClientGone:
            self._log(scope, request_id, 0, started, None)
            return
        except Exception as exc:
            answer = failure_answer(exc, request_id, scope.path, self)
        head = [*answer.headers, ("x-request-id", request_id), *self.extra_headers]
        if answer.status == 304:
            protocol.response_empty(304, head)
        else:
            protocol.response_bytes(answer.status, head, answer.body)
        self._log(scope, request_id, answer.status, started, answer.client_id)

    def _log(
        self, scope: Scope, request_id: str, status: int, started: float, client_id: str | None
    ) -> None:
        """The access record the ASGI AccessLog would write, when the log format asks for it."""
        if self.access_log:
            duration = time.perf_counter() - started
            log_request(request_id, scope.method, scope.path, status, duration, client_id=client_id)

    async def _token(self, scope: Scope, protocol: HTTPProtocol) -> Answer:
        return await self._client_post(scope, protocol, token_answer)

    async def _introspect(self, scope: Scope, protocol: HTTPProtocol) -> Answer:
        return await self._client_post(scope, protocol, introspect_answer)

    async def _client_post(self, scope: Scope, protocol: HTTPProtocol, work: ClientPost) -> Answer:
        """A form POST by an authenticating client: its body read within the limits, then
        ``work`` with the content type, the Authorization headers and the DPoP headers."""
        headers = scope.headers
        declared = _content_length(headers.get("content-length"))
        if declared is not None and declared > self.max_body:
            return too_large_answer(self.max_body)
        body = await self._read_body(protocol, declared)
        # get_all is granian's (RSGI headers); its type stub leaves it out.
        authorizations: list[str] = headers.get_all("authorization")  # type: ignore[attr-defined]
        proofs: list[str] = headers.get_all("dpop")  # type: ignore[attr-defined]
        address = self._client_address(scope)
        return await work(
            self.services, headers.get("content-type"), authorizations, body, proofs, address
        )

    def _client_address(self, scope: Scope) -> str:
        """The client's address as the ASGI TrustedProxies would make it."""
        peer = _address(scope.client)
        host = peer[0] if peer else ""
        trusted = self.services.settings.trusted_proxies
        if not trusted:
            return host
        forwarded = forwarded_client(host, scope.headers.get("x-forwarded-for") or "", trusted)
        return forwarded or host

    async def _jwks(self, scope: Scope, protocol: HTTPProtocol) -> Answer:
        return jwks_answer(self.services, scope.headers.get("if-none-match"))

    async def _metadata(self, scope: Scope, protocol: HTTPProtocol) -> Answer:
        return metadata_answer(self.services)

    async def _read_body(self, protocol: HTTPProtocol, declared: int | None) -> bytes:
        """The whole body within the read timeout and the size limit, as the ASGI
        RequestGuard holds it; ClientGone if the client left before sending it all."""
        try:
            async with asyncio.timeout(self.read_timeout):
                if declared is not None:
                    body = await protocol()  # the parser stops at the declared length
                else:
                    body = await self._read_chunks(protocol)
        except TimeoutError:
            raise BodyTimedOut from None
        except (ProtocolClosed, ProtocolError):
            raise ClientGone from None
        if declared is not None and len(body) != declared:
            raise ClientGone
        return body

    async def _read_chunks(self, protocol: HTTPProtocol) -> bytes:
        chunks: list[bytes] = []
        size = 0
        async for chunk in protocol:
            size += len(chunk)
            if size > self.max_body:
                raise BodyTooLarge
            chunks.append(chunk)
        return b"".join(chunks)


def _content_length(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return None


def _address(value: str) -> tuple[str, int] | None:
    """``host:port`` (IPv6 hosts possibly in brackets) as ASGI's (host, port)."""
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit():
        return None
    return host.strip("[]"), int(port)


def _raw(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


def asgi_scope(scope: Scope, state: dict[str, Any]) -> dict[str, Any]:
    """The ASGI HTTP scope (ASGI 3.0, HTTP 2.3) of an RSGI request."""
    return {
        "type": "http",
        "asgi": ASGI_VERSION,
        "http_version": scope.http_version,
        "method": scope.method,
        "scheme": scope.scheme,
        "path": scope.path,
        "query_string": _raw(scope.query_string),
        "root_path": "",
        "headers": [(_raw(name), _raw(value)) for name, value in scope.headers.items()],
        "client": _address(scope.client),
        "server": _address(scope.server),
        "state": dict(state),
    }


class AsgiExchange:
    """ASGI ``receive`` and ``send`` over one RSGI request."""

    def __init__(self, protocol: HTTPProtocol) -> None:
        self.protocol = protocol
        self.chunks = protocol.__aiter__()
        self.body_done = False
        self.status = 500
        self.headers: HeaderPairs = []
        self.stream: Any = None
        self.answered = False

    async def receive(self) -> Message:
        if self.body_done:
            await self.protocol.client_disconnect()
            return {"type": "http.disconnect"}
        try:
            chunk: bytes = await self.chunks.__anext__()
        except StopAsyncIteration:
            self.body_done = True
            return {"type": "http.request", "body": b"", "more_body": False}
        except (ProtocolClosed, ProtocolError):
            self.body_done = True
            return {"type": "http.disconnect"}
        return {"type": "http.request", "body": chunk, "more_body": True}

    async def send(self, message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            self.status = message["status"]
            self.headers = [
                (name.decode("latin-1"), value.decode("latin-1"))
                for name, value in message.get("headers", [])
            ]
        elif kind == "http.response.body":
            await self._body(message.get("body", b""), message.get("more_body", False))

    async def _body(self, body: bytes, more: bool) -> None:
        if self.stream is None and not more:
            self.protocol.response_bytes(self.status, self.headers, body)
            self.answered = True
            return
        if self.stream is None:
            self.stream = self.protocol.response_stream(self.status, self.headers)
            self.answered = True
        if body:
            await self.stream.send_bytes(body)

    def finish(self) -> None:
        """Answer 500 if the app ended without answering (the RSGI protocol needs one)."""
        if not self.answered:
            self.protocol.response_empty(500, [])


async def serve_asgi(
    app: Starlette, scope: Scope, protocol: HTTPProtocol, state: dict[str, Any]
) -> None:
    """Run the ASGI app for one RSGI request."""
    exchange = AsgiExchange(protocol)
    try:
        await app(asgi_scope(scope, state), exchange.receive, exchange.send)
    finally:
        exchange.finish()


class Lifespan:
    """The ASGI lifespan protocol (start-up and shut-down) driven for an RSGI worker."""

    def __init__(self, app: Starlette) -> None:
        self.app = app
        self.state: dict[str, Any] = {}
        self.task: asyncio.Task[None] | None = None
        self.inbox: asyncio.Queue[Message] | None = None
        self.outbox: asyncio.Queue[Message] | None = None

    async def startup(self) -> None:
        """Start the app's lifespan and wait for its start-up to complete."""
        self.inbox, self.outbox = asyncio.Queue(), asyncio.Queue()
        scope = {"type": "lifespan", "asgi": ASGI_VERSION, "state": self.state}
        self.task = asyncio.get_running_loop().create_task(
            self.app(scope, self.inbox.get, self.outbox.put)
        )
        await self.inbox.put({"type": "lifespan.startup"})
        reply = await self._reply()
        if reply.get("type") != "lifespan.startup.complete":
            await self._settle()
            raise StartupFailed(reply.get("message") or "the app's start-up failed")

    async def shutdown(self) -> None:
        """Ask the app to shut down and wait until it has."""
        if self.task is None or self.inbox is None or self.task.done():
            return
        await self.inbox.put({"type": "lifespan.shutdown"})
        reply = await self._reply()
        await self._settle()
        if reply.get("type") != "lifespan.shutdown.complete":
            log.error("shut-down failed: %s", reply.get("message", ""))

    async def _reply(self) -> Message:
        assert self.task is not None and self.outbox is not None
        reply = asyncio.ensure_future(self.outbox.get())
        await asyncio.wait({reply, self.task}, return_when=asyncio.FIRST_COMPLETED)
        if reply.done():
            return reply.result()
        reply.cancel()
        failure = self.task.exception()
        return {"type": "lifespan.failed", "message": str(failure) if failure else ""}

    async def _settle(self) -> None:
        """Wait for the lifespan task to end, its failure (already reported) consumed."""
        if self.task is not None:
            await asyncio.gather(self.task, return_exceptions=True)
