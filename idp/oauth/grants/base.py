"""What every grant handler receives and returns at the token endpoint (RFC 6749 section 5)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from idp.clock import Clock
from idp.config import Settings
from idp.keyring.ring import KeyRing
from idp.store.base import ClientRecord, Store


@dataclass(frozen=True)
class TokenRequest:
    """A parsed token request: single-valued parameters, plus every ``resource`` given."""

    params: Mapping[str, str]
    resources: Sequence[str] = ()

    def get(self, name: str) -> str | None:
        return self.params.get(name)


@dataclass(frozen=True)
class GrantContext:
    """What a grant may use: settings, the current key ring, the clock and the store."""

    settings: Settings
    ring: KeyRing
    clock: Clock
    store: Store


@dataclass(frozen=True)
class TokenResponse:
    """A successful token response (RFC 6749 section 5.1)."""

    access_token: str
    expires_in: int
    scope: Sequence[str] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "access_token": self.access_token,
            "token_type": "Bearer",
            "expires_in": self.expires_in,
        }
        if self.scope:
            body["scope"] = " ".join(self.scope)
        body.update(self.extra)
        return body


class GrantHandler(Protocol):
    """One grant type: it says which it handles and turns a request into tokens."""

    grant_type: str

    async def handle(
        self, request: TokenRequest, client: ClientRecord, context: GrantContext
    ) -> TokenResponse: ...
