"""The notes API: JSON, bearer JWT access tokens only, checked locally by ``idp.verify``.

It never calls the IdP per request: the verifier fetches the IdP's JWKS (through
discovery) and caches it. A token must be addressed to this API (``aud`` = its
identifier) and carry the scope ``notes:read``.

It advertises itself (RFC 9728): ``/.well-known/oauth-protected-resource`` names the IdP as
its authorization server, and every 401 points there with ``resource_metadata``, so a client
that knows only the API finds where to get a token for it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from idp.verify import ResourceMetadata, TokenVerifier
from idp.verify.starlette import requires_token, resource_metadata_route

SCOPE = "notes:read"
NOTES = ("Buy milk", "Rotate the signing keys (the IdP does it by itself)")


def create_app(issuer: str, audience: str) -> Starlette:
    """The API for tokens of ``issuer`` addressed to ``audience``."""
    verifier = TokenVerifier(issuer, audience=audience)
    metadata = ResourceMetadata.for_verifier(
        verifier, scopes_supported=[SCOPE], resource_name="Notes API"
    )

    @requires_token(verifier, scopes=[SCOPE], realm="notes", resource_metadata=metadata)
    async def notes(request: Request) -> Response:
        token = request.state.access_token
        return JSONResponse(
            {
                "notes": list(NOTES),
                "subject": token.subject,
                "client_id": token.client_id,
                "scopes": sorted(token.scopes),
                "aud": list(token.audience),
            },
            headers={"Cache-Control": "no-store"},
        )

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    return Starlette(
        routes=[
            Route("/notes", notes),
            Route("/healthz", health),
            resource_metadata_route(metadata),
        ]
    )


def from_environ(environ: Mapping[str, str] | None = None) -> Starlette:
    """The API configured by ``EXAMPLE_ISSUER`` and ``EXAMPLE_API_AUDIENCE``."""
    env = os.environ if environ is None else environ
    return create_app(env["EXAMPLE_ISSUER"].rstrip("/"), env["EXAMPLE_API_AUDIENCE"])
