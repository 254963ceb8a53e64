"""Protocol errors carrying their OAuth ``error`` code and HTTP status (RFC 6749 section 5.2)."""

from __future__ import annotations


class OAuthError(Exception):
    """An error answered to the client as ``{"error": ..., "error_description": ...}``."""

    error = "invalid_request"
    status = 400

    def __init__(self, description: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(description)
        self.description = description
        self.headers = headers or {}

    def body(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.description}


class InvalidRequest(OAuthError):
    error = "invalid_request"


class InvalidClient(OAuthError):
    """Client authentication failed (RFC 6749 section 5.2): always 401 with a challenge."""

    error = "invalid_client"
    status = 401

    def __init__(self, description: str = "client authentication failed") -> None:
        super().__init__(description, headers={"WWW-Authenticate": 'Basic realm="idp"'})


class InvalidGrant(OAuthError):
    error = "invalid_grant"


class UnauthorizedClient(OAuthError):
    error = "unauthorized_client"


class UnsupportedGrantType(OAuthError):
    error = "unsupported_grant_type"


class InvalidScope(OAuthError):
    error = "invalid_scope"


class InvalidTarget(OAuthError):
    """The requested resource is not one the client may use (RFC 8707 section 2)."""

    error = "invalid_target"


class TemporarilyUnavailable(OAuthError):
    error = "temporarily_unavailable"
    status = 503

    def __init__(self, description: str = "the service is temporarily unavailable") -> None:
        super().__init__(description, headers={"Retry-After": "5"})


class ServerError(OAuthError):
    error = "server_error"
    status = 500


class UnsupportedResponseType(OAuthError):
    error = "unsupported_response_type"


class AccessDenied(OAuthError):
    error = "access_denied"
    status = 403


class LoginRequired(OAuthError):
    """OpenID Connect Core 1.0 section 3.1.2.6: prompt=none and the user must sign in."""

    error = "login_required"


class ConsentRequired(OAuthError):
    """OpenID Connect Core 1.0 section 3.1.2.6: prompt=none and consent must be asked."""

    error = "consent_required"


class InvalidRequestObject(OAuthError):
    """The request object is not valid (RFC 9101 section 6.3, OIDC Core 3.1.2.6)."""

    error = "invalid_request_object"


class RequestNotSupported(OAuthError):
    error = "request_not_supported"


class RequestUriNotSupported(OAuthError):
    error = "request_uri_not_supported"


class InteractionRequired(OAuthError):
    """OpenID Connect Core 1.0 section 3.1.2.6: prompt=none and the user must act (here:
    give a second factor)."""

    error = "interaction_required"


class InvalidDpopProof(OAuthError):
    """The DPoP proof is missing where required, malformed or fails a check (RFC 9449 section 5)."""

    error = "invalid_dpop_proof"


class UseDpopNonce(OAuthError):
    """The DPoP proof lacks the server's current nonce (RFC 9449 section 8): the answer carries
    a fresh one in the ``DPoP-Nonce`` header for the client's next proof."""

    error = "use_dpop_nonce"

    def __init__(self, description: str, nonce: str) -> None:
        super().__init__(description, headers={"DPoP-Nonce": nonce})


class AuthorizationPending(OAuthError):
    """The person has not yet approved or denied the device code (RFC 8628 section 3.5)."""

    error = "authorization_pending"


class SlowDown(OAuthError):
    """The client polled sooner than its interval allows; the interval grows by 5 seconds
    (RFC 8628 section 3.5)."""

    error = "slow_down"


class ExpiredToken(OAuthError):
    """The device code has expired: the client must start over (RFC 8628 section 3.5)."""

    error = "expired_token"


class DeviceAccessDenied(OAuthError):
    """The person denied the device (RFC 8628 section 3.5): a token error, so 400."""

    error = "access_denied"
