"""Verify the IdP's access tokens in a resource server, with no call back to the IdP.

Importable with only joserfc (and cryptography beneath it) and httpx installed:
``pip install 'idp[verify]'``. The Starlette integration, ``idp.verify.starlette``, also
needs starlette (``idp[verify-starlette]``). Nothing here imports the rest of ``idp``.
"""

from idp.verify.errors import (
    InsufficientScope,
    InvalidRequest,
    InvalidToken,
    KeysUnavailable,
    VerificationError,
)
from idp.verify.resource_metadata import ResourceMetadata
from idp.verify.result import VerifiedToken
from idp.verify.verifier import TokenVerifier

__all__ = [
    "InsufficientScope",
    "InvalidRequest",
    "InvalidToken",
    "KeysUnavailable",
    "ResourceMetadata",
    "TokenVerifier",
    "VerificationError",
    "VerifiedToken",
]
