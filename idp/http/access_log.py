"""The access log: one record per HTTP request, for ``IDP_LOG_FORMAT=json``.

A record holds the request id, method, path (never the query string, whose values may be
codes or tokens), status, duration, and the client id and subject when an endpoint learnt
them (:func:`note`). No header is logged, so never an Authorization header or a cookie.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from idp.logs import FIELDS_ATTRIBUTE

log = logging.getLogger("idp.access")


def note(scope: Scope, *, client_id: str | None = None, subject: str | None = None) -> None:
    """Tell the access log who a request was for, once the endpoint knows."""
    state = scope.setdefault("state", {})
    if client_id is not None:
        state["client_id"] = client_id
    if subject is not None:
        state["subject"] = subject


class AccessLog:
    """Log each HTTP request once it is answered (or has failed)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 0

        async def tracked_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, tracked_send)
        finally:
            self._log(scope, status, time.perf_counter() - started)

    @staticmethod
    def _log(scope: Scope, status: int, duration: float) -> None:
        state: dict[str, Any] = scope.get("state") or {}
        log_request(
            state.get("request_id"),
            scope.get("method"),
            scope.get("path"),
            status,
            duration,
            client_id=state.get("client_id"),
            subject=state.get("subject"),
        )


def log_request(
    request_id: str | None,
    method: str | None,
    path: str | None,
    status: int,
    duration: float,
    *,
    client_id: str | None = None,
    subject: str | None = None,
) -> None:
    """Write one access record (``status`` 0: the request failed before an answer)."""
    fields = {
        "event": "request",
        "request_id": request_id,
        "method": method,
        "path": path,
        "status": status or None,
        "duration_ms": round(duration * 1000, 3),
        "client_id": client_id,
        "subject": subject,
    }
    log.info(f"{method} {path} {status}", extra={FIELDS_ATTRIBUTE: fields})
