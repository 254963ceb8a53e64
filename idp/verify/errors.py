"""Verification errors carrying their RFC 6750 section 3.1 error code and HTTP status.

A description is fixed text chosen here: it never repeats any part of the token, so it is
safe to send back to the client and to log.
"""

from __future__ import annotations

from collections.abc import Sequence


class VerificationError(Exception):
    """A bearer token was not accepted: ``error`` is its RFC 6750 code, ``status`` HTTP's."""

    error = "invalid_token"
    status = 401

    def __init__(self, description: str) -> None:
        super().__init__(description)
        self.description = description


class InvalidRequest(VerificationError):
    """The request carries no usable bearer token: malformed or repeated (RFC 6750 section 3.1)."""

    error = "invalid_request"
    status = 400


class InvalidToken(VerificationError):
    """The token is malformed, wrongly signed, expired or not for us (RFC 6750 section 3.1)."""

    error = "invalid_token"
    status = 401


class InsufficientScope(VerificationError):
    """The token is valid but lacks a scope the resource needs (RFC 6750 section 3.1)."""

    error = "insufficient_scope"
    status = 403

    def __init__(self, required: Sequence[str]) -> None:
        super().__init__("the access token lacks a required scope")
        self.required: tuple[str, ...] = tuple(required)


class KeysUnavailable(VerificationError):
    """No usable signing keys: the issuer cannot be reached and the cached keys are too old.

    Not the token's fault, so not ``invalid_token``: a resource server answers 503 and the
    client retries later with the same token (RFC 6749 section 4.1.2.1 names the code).
    """

    error = "temporarily_unavailable"
    status = 503
