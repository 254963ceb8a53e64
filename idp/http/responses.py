"""Response helpers: OAuth error JSON, no-store JSON, and the generic failure bodies."""

from __future__ import annotations

import json
from typing import Any

from starlette.responses import Response

from idp.oauth.errors import OAuthError

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


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


def error_body(error: str, description: str, **extra: str) -> dict[str, str]:
    return {"error": error, "error_description": description, **extra}
