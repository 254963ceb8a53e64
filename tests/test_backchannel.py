"""Back-Channel Logout 1.0 delivery to real receivers on 127.0.0.1, on both stores.

Each receiver is a small Starlette app under uvicorn that validates the logout token as
section 2.6 asks, against the IdP's JWKS fetched over HTTP from the running service.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
import uvicorn
from joserfc import jwt
from joserfc.jwk import KeySet
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from idp.backchannel import (
    BACKCHANNEL_LOGOUT_EVENT,
    BackchannelNotifier,
    BackchannelTarget,
)
from idp.keyring.ring import KeyRingService
from idp.store import make_store
from tests.conftest import LiveServer, free_port

pytestmark = pytest.mark.anyio


@dataclass
class Receiver:
    """A relying party's back-channel logout endpoint that checks every token it gets."""

    issuer: str
    client_id: str
    failures_first: int = 0
    hits: int = 0
    accepted: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    url: str = ""
    server: uvicorn.Server | None = None
    thread: threading.Thread | None = None

    async def endpoint(self, request: Request) -> Response:
        self.hits += 1
        if self.hits <= self.failures_first:
            return Response(status_code=500)
        assert request.headers["content-type"] == "application/x-www-form-urlencoded"
        form = parse_qs((await request.body()).decode())
        try:
            [token] = form["logout_token"]
            claims = self.validate(token)
        except Exception as exc:
            self.rejected.append(f"{type(exc).__name__}: {exc}")
            return Response(status_code=400)
        self.accepted.append(claims)
        return Response(status_code=200, headers={"Cache-Control": "no-store"})

    def validate(self, token: str) -> dict[str, Any]:
        """Back-Channel Logout 1.0 section 2.6, steps 1 to 7."""
        keys = KeySet.import_key_set(httpx.get(f"{self.issuer}/jwks.json").json())
        decoded = jwt.decode(token, keys, algorithms=["RS256", "ES256"])
        assert decoded.header["typ"] == "logout+jwt"
        claims = dict(decoded.claims)
        jwt.JWTClaimsRegistry(
            iss={"essential": True, "value": self.issuer},
            aud={"essential": True, "value": self.client_id},
            iat={"essential": True},
            exp={"essential": True},
            jti={"essential": True},
        ).validate(claims)
        assert claims["events"] == {BACKCHANNEL_LOGOUT_EVENT: {}}
        assert "sid" in claims or "sub" in claims
        assert "nonce" not in claims
        return claims

    def start(self) -> Receiver:
        port = free_port()
        app = Starlette(routes=[Route("/backchannel", self.endpoint, methods=["POST"])])
        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert time.monotonic() < deadline, "receiver did not start"
            time.sleep(0.02)
        self.url = f"http://127.0.0.1:{port}/backchannel"
        return self

    def stop(self) -> None:
        if self.server is not None and self.thread is not None:
            self.server.should_exit = True
            self.thread.join(timeout=10)


@pytest.fixture
async def keys(live_server: LiveServer) -> AsyncIterator[KeyRingService]:
    """The service's key ring, read from the store the running service uses."""
    store = make_store(live_server.settings.database_url)
    await store.open()
    service = KeyRingService(store, live_server.settings.key_encryption_key)
    await service.load()
    try:
        yield service
    finally:
        await store.close()


@pytest.fixture
def receivers(live_server: LiveServer) -> Iterator[list[Receiver]]:
    started: list[Receiver] = []
    yield started
    for receiver in started:
        receiver.stop()


def _receiver(
    live_server: LiveServer, receivers: list[Receiver], client_id: str, **options: Any
) -> Receiver:
    receiver = Receiver(live_server.url, client_id, **options).start()
    receivers.append(receiver)
    return receiver


async def test_logout_token_reaches_every_client_and_verifies(
    live_server: LiveServer, keys: KeyRingService, receivers: list[Receiver]
) -> None:
    first = _receiver(live_server, receivers, "app-one")
    second = _receiver(live_server, receivers, "app-two")
    notifier = BackchannelNotifier(live_server.settings, keys, time.time, backoff=0.01)
    before = int(time.time())
    notifier.notify(
        sid="sid-123",
        sub="user-7",
        targets=[
            BackchannelTarget("app-one", first.url),
            BackchannelTarget("app-two", second.url, alg="ES256"),
        ],
    )
    # Delivery is scheduled, not done: the caller did not wait for it.
    assert notifier.pending == 2
    assert first.hits == 0 and second.hits == 0
    await notifier.drain()
    await notifier.aclose()
    for receiver, client_id in ((first, "app-one"), (second, "app-two")):
        assert receiver.rejected == []
        [claims] = receiver.accepted
        assert claims["aud"] == client_id
        assert claims["sid"] == "sid-123" and claims["sub"] == "user-7"
        assert before <= claims["iat"] <= int(time.time())
        assert claims["exp"] - claims["iat"] == 120
    assert first.accepted[0]["jti"] != second.accepted[0]["jti"]


async def test_server_errors_are_retried(
    live_server: LiveServer,
    keys: KeyRingService,
    receivers: list[Receiver],
    caplog: pytest.LogCaptureFixture,
) -> None:
    flaky = _receiver(live_server, receivers, "flaky", failures_first=2)
    notifier = BackchannelNotifier(live_server.settings, keys, time.time, backoff=0.01)
    notifier.notify(sid="s", sub="u", targets=[BackchannelTarget("flaky", flaky.url)])
    await notifier.drain()
    await notifier.aclose()
    assert flaky.hits == 3
    assert len(flaky.accepted) == 1
    assert "failed" not in caplog.text


async def test_refusal_is_not_retried_and_is_logged(
    live_server: LiveServer,
    keys: KeyRingService,
    receivers: list[Receiver],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The receiver expects another audience, so it answers 400 (section 2.8).
    strict = _receiver(live_server, receivers, "someone-else")
    notifier = BackchannelNotifier(live_server.settings, keys, time.time, backoff=0.01)
    with caplog.at_level(logging.WARNING, logger="idp.backchannel"):
        notifier.notify(sid="s", sub="u", targets=[BackchannelTarget("app", strict.url)])
        await notifier.drain()
    await notifier.aclose()
    assert strict.hits == 1 and strict.accepted == [] and len(strict.rejected) == 1
    assert "HTTP 400" in caplog.text


async def test_unreachable_receiver_is_logged_and_never_raises(
    live_server: LiveServer, keys: KeyRingService, caplog: pytest.LogCaptureFixture
) -> None:
    dead = f"http://127.0.0.1:{free_port()}/backchannel"
    notifier = BackchannelNotifier(live_server.settings, keys, time.time, attempts=3, backoff=0.01)
    with caplog.at_level(logging.DEBUG, logger="idp.backchannel"):
        notifier.notify(sid="s", sub="u", targets=[BackchannelTarget("gone", dead)])
        await notifier.drain()
    await notifier.aclose()
    [record] = [r for r in caplog.records if r.name == "idp.backchannel"]
    assert record.levelno == logging.WARNING
    assert "client gone" in record.getMessage()
    assert "3 attempt(s)" in record.getMessage()
    assert "ConnectError" in record.getMessage()
    assert "eyJ" not in caplog.text


async def test_aclose_cancels_deliveries_that_outlast_it(
    live_server: LiveServer, keys: KeyRingService, caplog: pytest.LogCaptureFixture
) -> None:
    dead = f"http://127.0.0.1:{free_port()}/backchannel"
    # Retries that would take minutes: shut-down must not wait for them.
    notifier = BackchannelNotifier(live_server.settings, keys, time.time, backoff=60)
    notifier.notify(sid="s", sub="u", targets=[BackchannelTarget("slow", dead)])
    with caplog.at_level(logging.WARNING, logger="idp.backchannel"):
        await notifier.aclose(timeout=0.5)
    assert notifier.pending == 0
    assert "1 deliveries cancelled" in caplog.text
