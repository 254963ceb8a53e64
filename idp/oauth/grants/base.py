"""What every grant handler receives and returns at the token endpoint (RFC 6749 section 5)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from idp.clock import Clock
from idp.config import Settings
from idp.keyring.ring import KeyRing
from idp.oauth.access_token import ACCESS_TOKEN_TYP, access_token_claims
from idp.oauth.errors import InvalidGrant, InvalidRequest, UnauthorizedClient
from idp.store.base import ClientRecord, GrantStore
from idp.store.security_events import SecurityEventSink


@dataclass(frozen=True)
class TokenRequest:
    """A parsed token request: single-valued parameters, plus every ``resource`` (RFC 8707)
    and every ``audience`` (RFC 8693 section 2.1) given."""

    params: Mapping[str, str]
    resources: Sequence[str] = ()
    audiences: Sequence[str] = ()

    def get(self, name: str) -> str | None:
        return self.params.get(name)


@dataclass(frozen=True)
class GrantContext:
    """What a grant may use: settings, the current key ring, the clock, the store, where
    security events go (a replayed code or refresh token), the client's address, and the
    thumbprint of the key the request's DPoP proof proved (RFC 9449), if it had one."""

    settings: Settings
    ring: KeyRing
    clock: Clock
    store: GrantStore
    events: SecurityEventSink
    client_address: str = ""
    dpop_jkt: str | None = None


@dataclass(frozen=True)
class TokenResponse:
    """A successful token response (RFC 6749 section 5.1)."""

    access_token: str
    expires_in: int
    scope: Sequence[str] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)
    token_type: str = "Bearer"
    """``DPoP`` for a DPoP-bound access token (RFC 9449 section 5)."""

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "access_token": self.access_token,
            "token_type": self.token_type,
            "expires_in": self.expires_in,
        }
        if self.scope:
            body["scope"] = " ".join(self.scope)
        body.update(self.extra)
        return body


def check_grant_allowed(client: ClientRecord, grant_type: str) -> None:
    """Refuse a grant type the client was not registered for (RFC 6749 section 5.2)."""
    if grant_type not in client.grant_types:
        raise UnauthorizedClient(f"this client may not use the {grant_type} grant")


def required_param(request: TokenRequest, name: str) -> str:
    """A parameter the grant requires; an empty one counts as absent (RFC 6749 section 3.1)."""
    value = request.get(name)
    if not value:
        raise InvalidRequest(f"{name} is required")
    return value


class GrantHandler(Protocol):
    """One grant type: it says which it handles and turns a request into tokens."""

    grant_type: str

    async def handle(
        self, request: TokenRequest, client: ClientRecord, context: GrantContext
    ) -> TokenResponse: ...


def issue_access_token(
    context: GrantContext,
    client: ClientRecord,
    *,
    subject: str,
    audiences: Sequence[str],
    scope: Sequence[str],
    auth_time: float | None = None,
    grant_id: str | None = None,
    sid: str | None = None,
    acr: str | None = None,
    act: Mapping[str, Any] | None = None,
) -> str:
    """An RFC 9068 access token for ``client``, signed by the active key of its algorithm.

    ``auth_time`` is added when the user's sign-in time is known (RFC 9068 section 2.2.1);
    ``grant_id`` and ``sid`` name the grant and the session it is bound to, for revocation.
    When the request proved a DPoP key, the token is bound to it: ``cnf.jkt`` is the key's
    thumbprint (RFC 9449 section 6.1). ``act`` names who acts for the subject, from a token
    exchange (RFC 8693 section 4.1).
    """
    now = context.clock()
    claims = access_token_claims(
        issuer=context.settings.issuer,
        subject=subject,
        audiences=audiences,
        client_id=client.client_id,
        scope=scope,
        issued_at=int(now),
        lifetime=context.settings.access_token_ttl,
        grant_id=grant_id,
        sid=sid,
    )
    if auth_time is not None:
        claims["auth_time"] = int(auth_time)
    if acr is not None:
        claims["acr"] = acr  # RFC 9068 section 2.2.1
    if act is not None:
        claims["act"] = dict(act)
    if context.dpop_jkt is not None:
        claims["cnf"] = {"jkt": context.dpop_jkt}
    return context.ring.sign(client.access_token_alg, claims, ACCESS_TOKEN_TYP, now)


def check_dpop_key(bound_jkt: str | None, presented_jkt: str | None, what: str) -> None:
    """A grant bound to a DPoP key (``bound_jkt``) is used only with a proof of that key
    (RFC 9449 sections 5 and 10); an unbound one needs none. ``what`` names the grant
    ("the authorization code", "the refresh token") in the error."""
    if bound_jkt is None:
        return
    if presented_jkt is None:
        raise InvalidGrant(f"{what} is bound to a DPoP key: a DPoP proof is required")
    if presented_jkt != bound_jkt:
        raise InvalidGrant(f"the DPoP proof is not of the key {what} is bound to")
