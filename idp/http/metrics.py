"""Prometheus exposition of this process's metrics."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import Response

from idp.http.services import services


async def metrics(request: Request) -> Response:
    """The Prometheus text format of this app's registry, never cached."""
    body = services(request).metrics.exposition()
    return Response(
        body, headers={"Content-Type": CONTENT_TYPE_LATEST, "Cache-Control": "no-store"}
    )
