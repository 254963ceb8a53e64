"""The plain ASGI token, JWKS and discovery endpoints keep every refusal and header."""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from starlette.types import Message, Receive, Scope, Send

from idp.config import Settings
from idp.http.app import create_app
from idp.http.middleware import RequestGuard
from tests.support.server import LiveServer, basic, register_client
from tests.support.tokens import assert_oauth_error

FORM = {"Content-Type": "application/x-www-form-urlencoded"}
GRANT = b"grant_type=client_credentials"


def _basic_raw(credentials: bytes) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(credentials).decode()}


def test_basic_credentials_that_do_not_decode_are_invalid_client(
    live_server: LiveServer, http: httpx.Client
) -> None:
    client_id, secret = register_client(live_server.settings)
    attempts = [
        _basic_raw(b"\xff\xfe:" + secret.encode()),  # not UTF-8
        _basic_raw(client_id.encode() + secret.encode()),  # no colon
        _basic_raw(b":" + secret.encode()),  # no client id
        {"Authorization": "Basic"},
        {"Authorization": "Basic " + base64.b64encode(b"a:b").decode().rstrip("=") + "*"},
    ]
    for headers in attempts:
        response = http.post("/token", content=GRANT, headers={**FORM, **headers})
        assert_oauth_error(response, 401, "invalid_client")
        assert response.headers["www-authenticate"].startswith("Basic")
    # The scheme name is case-insensitive (RFC 9110 section 11.1).
    lower = basic(client_id, secret)["Authorization"].replace("Basic", "basic", 1)
    assert http.post("/token", content=GRANT, headers={**FORM, "Authorization": lower}).is_success


def test_repeated_parameters_are_refused_and_resource_may_repeat(
    live_server: LiveServer, http: httpx.Client
) -> None:
    client_id, secret = register_client(live_server.settings, audiences=["https://a", "https://b"])
    headers = {**FORM, **basic(client_id, secret)}
    for body in (
        GRANT + b"&scope=read&scope=read",
        GRANT + b"&client_id=" + client_id.encode() + b"&client_id=" + client_id.encode(),
        b"grant_type=client_credentials&grant_type=client_credentials",
    ):
        assert_oauth_error(
            http.post("/token", content=body, headers=headers), 400, "invalid_request"
        )
    twice = http.post(
        "/token", content=GRANT + b"&resource=https://a&resource=https://b", headers=headers
    )
    assert twice.status_code == 200, twice.text


def test_form_type_parameters_and_a_body_in_pieces_are_accepted(
    live_server: LiveServer, http: httpx.Client
) -> None:
    client_id, secret = register_client(live_server.settings, scope="read write")
    auth = basic(client_id, secret)
    charset = {"Content-Type": "Application/X-WWW-Form-Urlencoded; charset=UTF-8", **auth}
    assert http.post("/token", content=GRANT, headers=charset).status_code == 200

    def pieces() -> Iterator[bytes]:
        yield b"grant_type=client_"
        yield b"credentials&sco"
        yield b"pe=read"

    chunked = http.post("/token", content=pieces(), headers={**FORM, **auth})
    assert chunked.status_code == 200, chunked.text
    assert chunked.headers["cache-control"] == "no-store"
    assert chunked.headers["pragma"] == "no-cache"
    assert chunked.headers["content-type"] == "application/json"
    assert chunked.headers["x-request-id"]
    no_type = http.post("/token", content=GRANT, headers=auth)
    assert_oauth_error(no_type, 400, "invalid_request")


def test_public_documents_keep_their_headers_other_methods_and_head(http: httpx.Client) -> None:
    full = http.get("/jwks.json")
    etag = full.headers["etag"]
    assert full.headers["content-length"] == str(len(full.content))
    assert full.headers["x-request-id"]
    revalidated = http.get("/jwks.json", headers={"If-None-Match": etag})
    assert revalidated.status_code == 304
    assert "content-length" not in revalidated.headers
    assert "content-type" not in revalidated.headers
    for name in ("etag", "cache-control", "access-control-allow-origin"):
        assert revalidated.headers[name] == full.headers[name]
    assert revalidated.headers["x-request-id"]

    head = http.head("/jwks.json")
    assert head.status_code == 200 and head.content == b""
    assert head.headers["etag"] == etag
    assert http.post("/jwks.json").status_code == 405
    assert http.head("/.well-known/openid-configuration").status_code == 200
    assert http.put("/.well-known/openid-configuration").status_code == 405
    metadata = http.get("/.well-known/openid-configuration")
    assert metadata.headers["content-type"] == "application/json"
    assert metadata.headers["content-length"] == str(len(metadata.content))


def _token_scope() -> Scope:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/token",
        "raw_path": b"/token",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"content-type", b"application/x-www-form-urlencoded")],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 80),
    }


def test_a_client_that_leaves_mid_body_gets_no_answer_and_no_error(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(settings)
    messages: list[Message] = [
        {"type": "http.request", "body": b"grant_type=", "more_body": True},
        {"type": "http.disconnect"},
    ]
    sent: list[Message] = []

    async def receive() -> Message:
        return messages.pop(0)

    async def send(message: Message) -> None:
        sent.append(message)

    with caplog.at_level(logging.WARNING, logger="idp.http"):
        asyncio.run(app(_token_scope(), receive, send))
    assert sent == []
    assert caplog.records == []


def _guarded(read_timeout: float) -> tuple[RequestGuard, list[bytes]]:
    """A RequestGuard around an app that reads the whole body and answers 200."""
    bodies: list[bytes] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        bodies.append(body)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    return RequestGuard(app, read_timeout=read_timeout), bodies


def _run(guard: RequestGuard, receive: Receive) -> list[Message]:
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    asyncio.run(guard({"type": "http", "path": "/token", "headers": []}, receive, send))
    return sent


def _headers(message: Message) -> dict[bytes, bytes]:
    return dict(message["headers"])


def test_a_stalled_body_is_answered_408_and_the_connection_closed() -> None:
    guard, bodies = _guarded(read_timeout=0.2)
    stalled = asyncio.Event()

    async def receive() -> Message:
        await stalled.wait()  # never set: the client sends nothing more
        return {"type": "http.disconnect"}

    sent = _run(guard, receive)
    assert bodies == []
    assert sent[0]["status"] == 408
    assert _headers(sent[0])[b"connection"] == b"close"
    assert b"request body not received in time" in sent[1]["body"]


def test_one_deadline_covers_the_whole_body_not_each_read() -> None:
    guard, bodies = _guarded(read_timeout=0.3)
    chunks = 0

    async def trickle() -> Message:
        nonlocal chunks
        chunks += 1
        await asyncio.sleep(0.05)  # the client's pace: each read arrives well in time
        return {"type": "http.request", "body": b"a", "more_body": True}

    sent = _run(guard, trickle)
    assert sent[0]["status"] == 408
    assert bodies == []
    assert 3 <= chunks < 20


def test_a_body_in_time_and_in_pieces_is_read_whole() -> None:
    guard, bodies = _guarded(read_timeout=5.0)
    pieces: list[Any] = [b"grant_type=", b"client_credentials", b""]

    async def receive() -> Message:
        body = pieces.pop(0)
        return {"type": "http.request", "body": body, "more_body": bool(pieces)}

    sent = _run(guard, receive)
    assert sent[0]["status"] == 200
    assert bodies == [GRANT]
