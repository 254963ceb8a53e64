"""Authorization server metadata (RFC 8414 section 2; OpenID Connect Discovery 1.0 section 3).

Only what is implemented is advertised.
"""

from __future__ import annotations

from typing import Any

from idp.oauth.grants import GRANTS


def server_metadata(issuer: str) -> dict[str, Any]:
    """The metadata document served at both well-known locations."""
    return {
        "issuer": issuer,
        "jwks_uri": f"{issuer}/jwks.json",
        "token_endpoint": f"{issuer}/token",
        "grant_types_supported": sorted(GRANTS),
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "response_types_supported": [],
        "subject_types_supported": ["public"],
    }
