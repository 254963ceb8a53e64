"""The refresh token grant (RFC 6749 section 6), with rotation (RFC 9700 section 4.14.2).

Each use consumes the presented token and answers a new access token and a new refresh
token. The scope may only narrow: it is checked against the family's ceiling before the
token is consumed, so a refused request leaves the token usable; so are the resource
indicators the grant was authorized for (RFC 8707 section 2.2). No ID token is returned
(OpenID Connect Core 1.0 section 12.2 makes it optional on refresh). A public client's token
bound to a DPoP key is refused, also before it is consumed, unless the request proves that
key (RFC 9449 section 5).
"""

from __future__ import annotations

import logging

from idp.oauth.access_token import session_bound_sid
from idp.oauth.errors import InvalidGrant
from idp.oauth.grants.base import (
    GrantContext,
    TokenRequest,
    TokenResponse,
    check_dpop_key,
    check_grant_allowed,
    issue_access_token,
    required_param,
)
from idp.oauth.refresh_tokens import RefreshTokenRefused, find_refresh_token, redeem_refresh_token
from idp.oauth.resources import granted_audiences
from idp.oauth.scopes import grant_scope
from idp.store.base import ClientRecord, RotationOutcome
from idp.store.security_events import SecurityEvent

log = logging.getLogger("idp.oauth.refresh_token")

MAX_REFRESH_TOKEN_LENGTH = 512

BEYOND_GRANT = "scope beyond the original grant"
"""RFC 6749 section 6: a refresh may not ask for more than the resource owner granted."""


async def report_reuse(context: GrantContext, client: ClientRecord, presented: str) -> None:
    """Report a refresh token used again after its rotation: the store has revoked its whole
    family (RFC 9700 section 4.14.2), as a security event (``refresh_token.reuse``)."""
    log.warning("refresh token reuse by client %s: token family revoked", client.client_id)
    row = await find_refresh_token(context.store, presented)
    event = SecurityEvent(
        "refresh_token.reuse",
        "failure",
        client.client_id,
        row.user_id if row is not None else None,
        client.client_id,
        context.client_address,
        {"family": row.family_id} if row is not None else {},
        repeatable=True,
    )
    await context.events.record(event)


class RefreshTokenGrant:
    """Rotate a refresh token and issue an RFC 9068 access token whose subject is the user."""

    grant_type = "refresh_token"

    async def handle(
        self, request: TokenRequest, client: ClientRecord, context: GrantContext
    ) -> TokenResponse:
        check_grant_allowed(client, self.grant_type)
        presented = required_param(request, "refresh_token")
        if len(presented) > MAX_REFRESH_TOKEN_LENGTH:
            raise InvalidGrant("the refresh token is invalid, expired or revoked")
        requested_scope = request.get("scope")
        issuer = context.settings.issuer
        if requested_scope is not None or request.resources or client.is_public:
            # Checked before the token is consumed; the family's scope, resources and key
            # never change.
            current = await find_refresh_token(context.store, presented)
            if current is not None and current.client_id == client.client_id:
                if requested_scope is not None:
                    grant_scope(requested_scope, current.scope, BEYOND_GRANT)
                granted_audiences(request.resources, current.resources, client, issuer)
                check_dpop_key(current.dpop_jkt, context.dpop_jkt, "the refresh token")
        try:
            redeemed = await redeem_refresh_token(
                context.store,
                context.settings,
                context.clock,
                token=presented,
                client_id=client.client_id,
            )
        except RefreshTokenRefused as refused:
            if refused.outcome is RotationOutcome.REUSED:
                await report_reuse(context, client, presented)
            raise InvalidGrant("the refresh token is invalid, expired or revoked") from None
        record = redeemed.record
        scope = grant_scope(requested_scope, record.scope, BEYOND_GRANT)
        audiences = granted_audiences(request.resources, record.resources, client, issuer)
        token = issue_access_token(
            context,
            client,
            subject=record.user_id,
            audiences=audiences,
            scope=scope,
            auth_time=record.auth_time,
            grant_id=record.family_id,
            sid=session_bound_sid(record.sid, record.offline),
        )
        return TokenResponse(
            access_token=token,
            expires_in=context.settings.access_token_ttl,
            scope=scope,
            extra={"refresh_token": redeemed.token},
        )
