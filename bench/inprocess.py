"""The app's own cost per request, driven in-process with raw ASGI calls (no HTTP server).

    .venv/bin/python -m bench.inprocess [--requests N] [--rounds R] [--profile] ENDPOINT...

ENDPOINT is one of es256, rs256 (POST /token, client_credentials, client_secret_basic),
jwks, jwks304 (GET /jwks.json with a matching If-None-Match), discovery. Each endpoint is
measured ``--rounds`` times in turn, ``--requests`` calls each; the figure reported is the
median of the rounds in CPU microseconds of this process per request (steadier than wall
time when other work shares the core), with the wall-clock rate beside it. ``--profile``
prints a cProfile table per endpoint after the rounds. Every answer must have the expected
status, or the run stops.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import cProfile
import functools
import gc
import os
import pstats
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote_plus

from idp.admin.clients import create_client
from idp.admin.context import AdminContext
from idp.config import load_settings, new_key_encryption_key
from idp.http.app import create_app
from idp.oauth.registration import ClientRequest
from idp.store import make_store

ISSUER = "http://127.0.0.1:9"
TOKEN_BODY = b"grant_type=client_credentials"


@dataclass(frozen=True)
class Call:
    """One request: its ASGI scope, body and expected status."""

    scope: dict[str, Any]
    body: bytes
    status: int


def _scope(method: str, path: str, headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1:9"), *headers],
        "client": ("127.0.0.1", 5555),
        "server": ("127.0.0.1", 9),
    }


def token_call(client_id: str, secret: str) -> Call:
    pair = f"{quote_plus(client_id)}:{quote_plus(secret)}".encode()
    headers = [
        (b"authorization", b"Basic " + base64.b64encode(pair)),
        (b"content-type", b"application/x-www-form-urlencoded"),
        (b"content-length", str(len(TOKEN_BODY)).encode()),
    ]
    return Call(_scope("POST", "/token", headers), TOKEN_BODY, 200)


async def call(app: Any, request: Call) -> bytes:
    """Run one request through the app; returns the body, checks the status."""
    delivered = False
    statuses: list[int] = []
    chunks: list[bytes] = []

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": request.body, "more_body": False}
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(dict(request.scope), receive, send)
    if statuses != [request.status]:
        raise SystemExit(f"{request.scope['path']}: answered {statuses}, expected {request.status}")
    return b"".join(chunks)


class CollectorTime:
    """Time the cyclic garbage collector spends, summed from gc.callbacks."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.collections = [0, 0, 0]
        self._started = 0.0
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.seconds += time.perf_counter() - self._started
            self.collections[info["generation"]] += 1


async def measure(run: Callable[[], Awaitable[bytes]], n: int) -> tuple[float, float]:
    """CPU µs per request and requests per wall second over ``n`` calls."""
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(n):
        await run()
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return cpu / n * 1e6, n / wall


async def main(args: argparse.Namespace) -> None:
    folder = tempfile.mkdtemp()
    env = {
        "IDP_ISSUER": ISSUER,
        "IDP_DATABASE_URL": f"sqlite:///{folder}/idp.db",
        "IDP_KEY_ENCRYPTION_KEY": new_key_encryption_key(),
    }
    settings = load_settings(env)
    store = make_store(settings.database_url)
    await store.open()
    await store.migrate()
    calls: dict[str, Call] = {}
    for alg in ("ES256", "RS256"):
        record, secret = await create_client(
            AdminContext(store, settings),
            ClientRequest(name=alg, scope="read", audiences=["https://api"], access_token_alg=alg),
        )
        assert secret is not None  # a confidential client
        calls[alg.lower()] = token_call(record.client_id, secret)
    await store.close()
    app = create_app(settings)
    calls["jwks"] = Call(_scope("GET", "/jwks.json", []), b"", 200)
    calls["discovery"] = Call(_scope("GET", "/.well-known/openid-configuration", []), b"", 200)

    startup: asyncio.Queue[dict[str, str]] = asyncio.Queue()
    started = asyncio.Event()
    await startup.put({"type": "lifespan.startup"})

    async def life_send(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "lifespan.startup.complete":
            started.set()

    life = asyncio.create_task(
        app({"type": "lifespan", "asgi": {"version": "3.0"}}, startup.get, life_send)
    )
    await started.wait()
    etag = app.state.services.keys.ring.jwks_etag.encode()
    calls["jwks304"] = Call(_scope("GET", "/jwks.json", [(b"if-none-match", etag)]), b"", 304)

    collector = CollectorTime()
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in args.endpoints}
    for name in args.endpoints:
        for _ in range(args.requests // 10 + 1):
            await call(app, calls[name])
    for _ in range(args.rounds):
        for name in args.endpoints:
            results[name].append(
                await measure(functools.partial(call, app, calls[name]), args.requests)
            )
    for name, rounds in results.items():
        cpu = statistics.median(r[0] for r in rounds)
        rate = statistics.median(r[1] for r in rounds)
        print(f"{name:10s} {cpu:8.1f} CPU us/request (median of {len(rounds)}), {rate:8.0f} req/s")
    total = args.rounds * args.requests * len(args.endpoints)
    print(
        f"garbage collector: {collector.seconds / total * 1e6:.1f} us/request, "
        f"collections per generation {collector.collections}"
    )
    if args.profile:
        for name in args.endpoints:
            request = calls[name]
            profile = cProfile.Profile()
            profile.enable()
            for _ in range(args.requests):
                await call(app, request)
            profile.disable()
            print(f"--- {name}")
            pstats.Stats(profile).sort_stats(os.environ.get("SORT", "tottime")).print_stats(40)
    await startup.put({"type": "lifespan.shutdown"})
    await life


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "endpoints", nargs="+", choices=["es256", "rs256", "jwks", "jwks304", "discovery"]
    )
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--profile", action="store_true")
    return parser.parse_args()


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
