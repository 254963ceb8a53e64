"""The client credentials grant (RFC 6749 section 4.4)."""

from __future__ import annotations

from collections.abc import Sequence

from idp.oauth.access_token import ACCESS_TOKEN_TYP, access_token_claims
from idp.oauth.errors import InvalidTarget, UnauthorizedClient
from idp.oauth.grants.base import GrantContext, TokenRequest, TokenResponse
from idp.oauth.scopes import grant_scope
from idp.store.base import ClientRecord


def resolve_audiences(requested: Sequence[str], client: ClientRecord, issuer: str) -> list[str]:
    """The token's audiences (RFC 8707 section 2): those asked for, all registered to the client.

    With no ``resource`` the audience is the client's first registered one, or the issuer.
    """
    if not requested:
        return [client.audiences[0] if client.audiences else issuer]
    unknown = [r for r in requested if r not in client.audiences]
    if unknown:
        raise InvalidTarget(f"resource not allowed for this client: {unknown[0]}")
    return list(dict.fromkeys(requested))


class ClientCredentialsGrant:
    """Issue an RFC 9068 access token whose subject is the client itself."""

    grant_type = "client_credentials"

    async def handle(
        self, request: TokenRequest, client: ClientRecord, context: GrantContext
    ) -> TokenResponse:
        if client.is_public or self.grant_type not in client.grant_types:
            raise UnauthorizedClient("this client may not use the client_credentials grant")
        scope = grant_scope(request.get("scope"), client.scope)
        audiences = resolve_audiences(request.resources, client, context.settings.issuer)
        ttl = context.settings.access_token_ttl
        claims = access_token_claims(
            issuer=context.settings.issuer,
            subject=client.client_id,
            audiences=audiences,
            client_id=client.client_id,
            scope=scope,
            issued_at=int(context.clock()),
            lifetime=ttl,
        )
        token = context.ring.sign(
            client.access_token_alg, claims, ACCESS_TOKEN_TYP, now=context.clock()
        )
        return TokenResponse(access_token=token, expires_in=ttl, scope=scope)
