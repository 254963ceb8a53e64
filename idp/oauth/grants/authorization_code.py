"""The authorization code grant (RFC 6749 section 4.1.3, OpenID Connect Core 1.0 3.1.3).

The code is consumed atomically in the store before anything else is checked, so of many
concurrent redemptions exactly one proceeds. A code redeemed a second time is refused and
what its first redemption issued is revoked (RFC 6749 section 4.1.2).
"""

from __future__ import annotations

import logging

from idp.oauth.codes import code_hash
from idp.oauth.errors import InvalidGrant
from idp.oauth.grants.base import (
    GrantContext,
    TokenRequest,
    TokenResponse,
    check_dpop_key,
    check_grant_allowed,
    required_param,
)
from idp.oauth.grants.user_tokens import UserGrant, signed_in_user, user_tokens
from idp.oauth.pkce import verify_code_verifier
from idp.oauth.refresh_tokens import revoke_refresh_family
from idp.oauth.resources import granted_audiences
from idp.store.base import AuthorizationCodeRecord, ClientRecord, UserRecord
from idp.store.security_events import SecurityEvent

log = logging.getLogger("idp.grants")

MAX_CODE_LENGTH = 256


async def revoke_code_family(context: GrantContext, family_id: str) -> None:
    """Revoke every token issued from one code's redemption (RFC 6749 section 4.1.2).

    The code's row id is the grant id: its refresh tokens share it as ``family_id`` and its
    access tokens carry it as ``grant_id``; ending the grant makes all of them inactive.
    """
    revoked = await revoke_refresh_family(context.store, family_id, clock=context.clock)
    log.warning(
        "authorization code %s redeemed twice; grant ended, %d refresh token(s) revoked",
        family_id,
        revoked,
    )


async def report_replay(
    context: GrantContext, client: ClientRecord, code: AuthorizationCodeRecord
) -> None:
    """Report a code redeemed a second time (RFC 6749 section 10.5) as a security event
    (``authorization_code.replay``): the user it was issued for, the client it was issued
    to, the presenting client and its address; never the code."""
    detail = {"grant": code.id}
    if client.client_id != code.client_id:
        detail["presented_by"] = client.client_id
    event = SecurityEvent(
        "authorization_code.replay",
        "failure",
        client.client_id,
        code.user_id,
        code.client_id,
        context.client_address,
        detail,
        repeatable=True,
    )
    await context.events.record(event)


def check_binding(
    code: AuthorizationCodeRecord, client: ClientRecord, request: TokenRequest, now: float
) -> None:
    """The code is live and bound to this client, redirect_uri and verifier (RFC 6749 4.1.3)."""
    if now >= code.expires_at:
        raise InvalidGrant("the authorization code has expired")
    if code.client_id != client.client_id:
        raise InvalidGrant("the authorization code was issued to another client")
    if request.get("redirect_uri") != code.redirect_uri:
        raise InvalidGrant("redirect_uri does not match the authorization request")
    verify_code_verifier(code.code_challenge, request.get("code_verifier"))


class AuthorizationCodeGrant:
    """Exchange a code for an RFC 9068 access token and an ID token."""

    grant_type = "authorization_code"

    async def handle(
        self, request: TokenRequest, client: ClientRecord, context: GrantContext
    ) -> TokenResponse:
        check_grant_allowed(client, self.grant_type)
        code = required_param(request, "code")
        if len(code) > MAX_CODE_LENGTH:
            raise InvalidGrant("the authorization code is invalid")
        now = context.clock()
        redemption = await context.store.consume_authorization_code(code_hash(code), now)
        if redemption is None:
            raise InvalidGrant("the authorization code is invalid")
        if redemption.already_consumed:
            await revoke_code_family(context, redemption.code.id)
            await report_replay(context, client, redemption.code)
            raise InvalidGrant("the authorization code has already been used")
        record = redemption.code
        check_binding(record, client, request, now)
        check_dpop_key(record.dpop_jkt, context.dpop_jkt, "the authorization code")
        ended = "the sign-in session of the authorization code has ended"
        user = await signed_in_user(context, record.user_id, record.sid, record.scope, ended)
        return await self._tokens(request, client, context, record, user)

    async def _tokens(
        self,
        request: TokenRequest,
        client: ClientRecord,
        context: GrantContext,
        record: AuthorizationCodeRecord,
        user: UserRecord,
    ) -> TokenResponse:
        grant = UserGrant(
            user=user,
            scope=record.scope,
            grant_id=record.id,
            sid=record.sid,
            auth_time=record.auth_time,
            amr=record.amr,
            acr=record.acr,
            nonce=record.nonce,
            resources=record.resources,
        )
        issuer = context.settings.issuer
        audiences = granted_audiences(request.resources, record.resources, client, issuer)
        return await user_tokens(context, client, grant, audiences)
