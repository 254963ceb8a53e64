"""The verified access token: RFC 9068 claims in typed fields."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class VerifiedToken:
    """An access token whose signature and claims passed every check (RFC 9068 section 4).

    ``claims`` is a read-only view of every claim, including ones this type does not name.
    """

    claims: Mapping[str, Any]
    issuer: str
    subject: str
    client_id: str
    scopes: tuple[str, ...]
    audience: tuple[str, ...]
    expires_at: int | float
    issued_at: int | float
    jti: str
    kid: str
    alg: str

    def has_scope(self, *scopes: str) -> bool:
        """True when the token was granted every one of ``scopes`` (RFC 9068 section 2.2.3)."""
        return all(scope in self.scopes for scope in scopes)
