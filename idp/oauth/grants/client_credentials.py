"""The client credentials grant (RFC 6749 section 4.4)."""

from __future__ import annotations

from idp.oauth.errors import UnauthorizedClient
from idp.oauth.grants.base import (
    GrantContext,
    TokenRequest,
    TokenResponse,
    issue_access_token,
)
from idp.oauth.resources import resolve_audiences
from idp.oauth.scopes import grant_scope
from idp.store.base import ClientRecord


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
        token = issue_access_token(
            context, client, subject=client.client_id, audiences=audiences, scope=scope
        )
        return TokenResponse(
            access_token=token, expires_in=context.settings.access_token_ttl, scope=scope
        )
