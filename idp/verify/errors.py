"""Verification errors carrying their RFC 6750 section 3.1 error code and HTTP status.

A description is fixed text chosen here: it never repeats any part of the token, so it is
safe to send back to the client and to log.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

# RFC 6750 section 3: characters allowed inside a quoted challenge attribute.
_UNSAFE_IN_QUOTES = re.compile(r"[^\x20\x21\x23-\x5b\x5d-\x7e]")


class VerificationError(Exception):
    """A bearer token was not accepted: ``error`` is its RFC 6750 code, ``status`` HTTP's.

    ``client_id`` names the token's client when its signature held, so that a refusal can be
    attributed (in a log or an audit trail); it is never part of the answer.
    """

    error = "invalid_token"
    status = 401

    def __init__(self, description: str, *, client_id: str | None = None) -> None:
        super().__init__(description)
        self.description = description
        self.client_id = client_id


class InvalidRequest(VerificationError):
    """The request carries no usable bearer token: malformed or repeated (RFC 6750 section 3.1)."""

    error = "invalid_request"
    status = 400


class InvalidToken(VerificationError):
    """The token is malformed, wrongly signed, expired or not for us (RFC 6750 section 3.1)."""

    error = "invalid_token"
    status = 401


class MissingToken(InvalidToken):
    """No bearer token at all: the challenge carries no error code (RFC 6750 section 3.1)."""

    def __init__(self, description: str = "a bearer access token is required") -> None:
        super().__init__(description)


class InsufficientScope(VerificationError):
    """The token is valid but lacks a scope the resource needs (RFC 6750 section 3.1)."""

    error = "insufficient_scope"
    status = 403

    def __init__(self, required: Sequence[str], *, client_id: str | None = None) -> None:
        super().__init__("the access token lacks a required scope", client_id=client_id)
        self.required: tuple[str, ...] = tuple(required)


class KeysUnavailable(VerificationError):
    """No usable signing keys: the issuer cannot be reached and the cached keys are too old.

    Not the token's fault, so not ``invalid_token``: a resource server answers 503 and the
    client retries later with the same token (RFC 6749 section 4.1.2.1 names the code).
    """

    error = "temporarily_unavailable"
    status = 503


class DpopError(VerificationError):
    """A refusal answered with a ``DPoP`` challenge (RFC 9449 section 7.1)."""


class InvalidDpopProof(DpopError):
    """The request's DPoP proof is missing, malformed, replayed or not of the token's key
    (RFC 9449 section 7.1)."""

    error = "invalid_dpop_proof"
    status = 401


class InvalidDpopToken(DpopError):
    """The access token cannot be used as presented: a DPoP-bound token sent as a bearer
    token, or a token that is not bound sent with the DPoP scheme (RFC 9449 section 7.2)."""

    error = "invalid_token"
    status = 401


class UseDpopNonce(DpopError):
    """The DPoP proof lacks the resource server's current nonce: retry with ``nonce`` in a new
    proof (RFC 9449 section 9; the answer carries it in a ``DPoP-Nonce`` header)."""

    error = "use_dpop_nonce"
    status = 401

    def __init__(self, description: str, nonce: str) -> None:
        super().__init__(description)
        self.nonce = nonce


def _quoted(value: str) -> str:
    return '"' + _UNSAFE_IN_QUOTES.sub("", value) + '"'


def challenge(
    realm: str | None,
    error: VerificationError | None = None,
    *,
    scheme: str = "Bearer",
    algs: Sequence[str] = (),
    resource_metadata: str | None = None,
) -> str:
    """The ``WWW-Authenticate`` value for a refused request (RFC 6750 section 3).

    A request with no token at all (``error`` None or a MissingToken) gets the bare
    challenge; otherwise the error code, its description and, for insufficient_scope, the
    scopes needed. With ``scheme`` ``DPoP`` it is the challenge of RFC 9449 section 7.1,
    ``algs`` naming the proof algorithms accepted. ``resource_metadata``, the URL of the
    resource's metadata document, ends every challenge when given (RFC 9728 section 5.1).
    """
    attributes = [f"realm={_quoted(realm)}"] if realm else []
    if algs:
        attributes.append(f"algs={_quoted(' '.join(algs))}")
    if error is not None and not isinstance(error, MissingToken):
        attributes.append(f"error={_quoted(error.error)}")
        attributes.append(f"error_description={_quoted(error.description)}")
        if isinstance(error, InsufficientScope):
            attributes.append(f"scope={_quoted(' '.join(error.required))}")
    if resource_metadata:
        attributes.append(f"resource_metadata={_quoted(resource_metadata)}")
    return scheme + (" " + ", ".join(attributes) if attributes else "")
