"""Response helpers: OAuth error JSON, no-store JSON, and the generic failure bodies."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from starlette.responses import Response

from idp.oauth.errors import OAuthError

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
JSON_TYPE = "application/json"

HeaderPairs = list[tuple[str, str]]
"""Response headers as (lower-case name, value) pairs, the form granian's RSGI takes."""


@dataclass(frozen=True, slots=True)
class Answer:
    """A whole response of the busiest endpoints, for either server interface.

    ``headers`` hold everything but ``content-length``, which each interface adds from
    ``body`` (none for a 304, RFC 9110 section 15.4.5).
    """

    status: int
    headers: HeaderPairs
    body: bytes = b""
    client_id: str | None = None
    """The authenticated client the answer went to, for the access log."""


@dataclass(slots=True)
class KnownClient:
    """Who a request turned out to come from, once its client authenticated."""

    client_id: str | None = None


def header_pairs(headers: dict[str, str]) -> HeaderPairs:
    """``headers`` as lower-case (name, value) pairs."""
    return [(name.lower(), value) for name, value in headers.items()]


_ERROR_HEAD = [("content-type", JSON_TYPE), *header_pairs(NO_STORE)]


def json_bytes(document: Any) -> bytes:
    return json.dumps(document, separators=(",", ":")).encode()


def json_response(
    document: Any, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return Response(
        json_bytes(document), status_code=status, headers=headers, media_type="application/json"
    )


def oauth_error_response(error: OAuthError) -> Response:
    """An error response as RFC 6749 section 5.2 describes, never cached."""
    return json_response(error.body(), error.status, {**NO_STORE, **error.headers})


def oauth_error_answer(error: OAuthError, client_id: str | None = None) -> Answer:
    """The same error as :func:`oauth_error_response`, as an :class:`Answer`."""
    head = [*_ERROR_HEAD, *header_pairs(error.headers)]
    return Answer(error.status, head, json_bytes(error.body()), client_id)


def error_body(error: str, description: str, **extra: str) -> dict[str, str]:
    return {"error": error, "error_description": description, **extra}
