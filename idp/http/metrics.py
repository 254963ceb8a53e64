"""Prometheus exposition of the service's metrics, and the timing of the sign-in pages."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import Response

from idp.http.services import services

Endpoint = Callable[[Request], Awaitable[Response]]


async def metrics(request: Request) -> Response:
    """The Prometheus text format of this app's metrics, never cached."""
    body = services(request).metrics.exposition()
    return Response(
        body, headers={"Content-Type": CONTENT_TYPE_LATEST, "Cache-Control": "no-store"}
    )


def timed(name: str, endpoint: Endpoint) -> Endpoint:
    """``endpoint``, its time to answer observed in the page latency histogram as ``name``
    (whatever the answer, errors included)."""

    async def answer(request: Request) -> Response:
        started = time.perf_counter()
        try:
            return await endpoint(request)
        finally:
            services(request).metrics.page_answered(name, time.perf_counter() - started)

    return answer
