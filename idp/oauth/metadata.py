"""Authorization server metadata (RFC 8414 section 2; OpenID Connect Discovery 1.0 section 3).

Only what is implemented is advertised.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from idp.oauth.acr import ACR_VALUES
from idp.oauth.authorization import STANDARD_SCOPES
from idp.oauth.claims import CLAIMS_SUPPORTED
from idp.oauth.client_auth import AUTH_METHODS, CONFIDENTIAL_AUTH_METHODS
from idp.oauth.client_keys import ASSERTION_ALGS
from idp.oauth.client_secret_jwt import HMAC_ALGS
from idp.oauth.dpop import DPOP_ALGS
from idp.oauth.grants import GRANTS
from idp.oauth.pkce import S256
from idp.oauth.request_object import REQUEST_OBJECT_ALGS


def _assertion_algs() -> list[str]:
    return sorted(ASSERTION_ALGS | HMAC_ALGS)


def server_metadata(
    issuer: str, signing_algs: Sequence[str] = ("RS256", "ES256"), *, require_par: bool = False
) -> dict[str, Any]:
    """The metadata document served at both well-known locations."""
    return {
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}/authorize",
        "token_endpoint": f"{issuer}/token",
        "userinfo_endpoint": f"{issuer}/userinfo",
        "end_session_endpoint": f"{issuer}/logout",
        "jwks_uri": f"{issuer}/jwks.json",
        "grant_types_supported": sorted(GRANTS),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": list(signing_algs),
        "token_endpoint_auth_methods_supported": list(AUTH_METHODS),
        # RFC 8414 section 2: one list for the private_key_jwt and client_secret_jwt
        # assertions (RFC 7523), so it holds the HMAC alg beside the signature algs.
        "token_endpoint_auth_signing_alg_values_supported": _assertion_algs(),
        "introspection_endpoint_auth_signing_alg_values_supported": _assertion_algs(),
        "revocation_endpoint_auth_signing_alg_values_supported": _assertion_algs(),
        "introspection_endpoint": f"{issuer}/introspect",
        # RFC 7662 section 2.1: callers authenticate; public clients cannot, so "none" is out.
        "introspection_endpoint_auth_methods_supported": list(CONFIDENTIAL_AUTH_METHODS),
        "revocation_endpoint": f"{issuer}/revoke",
        # RFC 7009 section 2.1: a public client identifies itself by client_id alone.
        "revocation_endpoint_auth_methods_supported": list(AUTH_METHODS),
        "code_challenge_methods_supported": [S256],
        "scopes_supported": list(STANDARD_SCOPES),
        "claims_supported": list(CLAIMS_SUPPORTED),
        "prompt_values_supported": ["none", "login", "consent"],
        "acr_values_supported": list(ACR_VALUES),
        "authorization_response_iss_parameter_supported": True,
        "backchannel_logout_supported": True,
        "backchannel_logout_session_supported": True,
        # Request objects by value and pushed (RFC 9101), signed with the client's keys.
        "request_parameter_supported": True,
        "request_object_signing_alg_values_supported": sorted(REQUEST_OBJECT_ALGS),
        # OpenID Connect's request_uri (a request object fetched from the client) is not
        # supported; the request_uri of a pushed request is (RFC 9126 section 5).
        "request_uri_parameter_supported": False,
        "pushed_authorization_request_endpoint": f"{issuer}/par",
        "require_pushed_authorization_requests": require_par,
        # RFC 9449 section 5.1: the algorithms accepted for DPoP proofs.
        "dpop_signing_alg_values_supported": list(DPOP_ALGS),
        # RFC 7591 section 3: always advertised, since an administrator's initial access
        # token may open it even while open registration (IDP_OPEN_REGISTRATION) is off.
        "registration_endpoint": f"{issuer}/register",
        # RFC 8628 section 4: where a device asks for its device and user codes.
        "device_authorization_endpoint": f"{issuer}/device_authorization",
    }
