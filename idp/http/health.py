"""Liveness and readiness probes."""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import Response

from idp.http.responses import json_response
from idp.http.services import services
from idp.store.base import StoreUnavailable

READY_TIMEOUT = 3.0


async def healthz(request: Request) -> Response:
    """The process is alive and serving."""
    return json_response({"status": "ok"})


async def readyz(request: Request) -> Response:
    """Ready when the store answers, a signing key is loaded for every configured alg, and
    the keys in the store open under the configured key-encryption key (``reason`` says why
    not)."""
    found = services(request)
    checks = {"store": "ok", "keys": "ok"}
    reason: dict[str, str] = {}
    try:
        await asyncio.wait_for(found.store.ping(), READY_TIMEOUT)
    except (StoreUnavailable, TimeoutError):
        checks["store"] = "unavailable"
    if not (found.keys.loaded and found.keys.ring.has_signing_keys(found.settings.signing_algs)):
        checks["keys"] = "missing"
    elif found.keys.load_error is not None:
        checks["keys"] = "unreadable"
        reason["reason"] = found.keys.load_error
    ready = all(v == "ok" for v in checks.values())
    return json_response(
        {"status": "ready" if ready else "not ready", **checks, **reason},
        200 if ready else 503,
        {"Cache-Control": "no-store", **({} if ready else {"Retry-After": "5"})},
    )
