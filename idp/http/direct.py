"""Plain ASGI for the busiest endpoints: token, introspection, JWKS and discovery.

These endpoints answer machines at high rates, so they read the scope and the body
themselves and send prepared header lists, without building a Starlette request or
response. Each endpoint's work is a function from plain values to an :class:`Answer`, so
the same work also serves granian's RSGI interface (see ``idp.http.rsgi``), which
``idp serve`` uses. ``DirectRoutes`` hands their exact method and path to them ahead of the router;
everything else (other methods, HEAD, unknown paths) still goes through the router, where
the same endpoints are also registered. The guarantees of the middleware around them
(request id, body size and deadline, error bodies) are unchanged: it runs first.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from starlette.types import ASGIApp, Receive, Scope, Send

from idp.http.access_log import note
from idp.http.responses import Answer
from idp.http.services import Services


class ClientGone(Exception):
    """The client disconnected before sending its whole body: there is no one to answer."""


def scope_services(scope: Scope) -> Services:
    """The app's shared services, as ``services(request)`` gives them."""
    found: Services = scope["app"].state.services
    return found


def header_values(scope: Scope, name: bytes) -> list[str]:
    """Every value of one request header (lower-case ``name``), decoded as Starlette does."""
    return [value.decode("latin-1") for key, value in scope["headers"] if key == name]


def first_header(scope: Scope, name: bytes) -> str | None:
    """The first value of one request header (lower-case ``name``), or None."""
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


async def read_body(receive: Receive) -> bytes:
    """The whole request body; ClientGone if the client left first.

    The size and time limits are the RequestGuard's, enforced inside ``receive``.
    """
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise ClientGone
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def send_answer(send: Send, answer: Answer) -> None:
    """One whole response as ASGI messages; ``content-length`` is added after the headers
    (none for a 304, RFC 9110 section 15.4.5)."""
    head = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in answer.headers]
    if answer.status != 304:
        head.append((b"content-length", str(len(answer.body)).encode("latin-1")))
    await send({"type": "http.response.start", "status": answer.status, "headers": head})
    await send({"type": "http.response.body", "body": answer.body})


ClientPost = Callable[[Services, str | None, list[str], bytes, list[str], str], Awaitable[Answer]]
"""The work of an endpoint a client POSTs a form to: (services, content type, Authorization
headers, body, DPoP headers, client address) to an answer."""


def client_host(scope: Scope) -> str:
    """The client address of an ASGI scope (after TrustedProxies), or "" when unknown."""
    client = scope.get("client")
    return str(client[0]) if client else ""


class ClientPostEndpoint:
    """A client-POST work function (token, introspection) as a plain ASGI endpoint."""

    def __init__(self, work: ClientPost) -> None:
        self.work = work

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            body = await read_body(receive)
        except ClientGone:
            return
        answer = await self.work(
            scope_services(scope),
            first_header(scope, b"content-type"),
            header_values(scope, b"authorization"),
            body,
            header_values(scope, b"dpop"),
            client_host(scope),
        )
        note(scope, client_id=answer.client_id)
        await send_answer(send, answer)


class DirectRoutes:
    """Send requests whose method and path match exactly straight to their endpoint."""

    def __init__(self, app: ASGIApp, routes: Mapping[tuple[str, str], ASGIApp]) -> None:
        self.app = app
        self.routes: dict[tuple[str, str], ASGIApp] = dict(routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            endpoint = self.routes.get((scope["method"], scope["path"]))
            if endpoint is not None and not scope.get("root_path"):
                await endpoint(scope, receive, send)
                return
        await self.app(scope, receive, send)
