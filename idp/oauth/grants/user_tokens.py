"""The tokens of a grant a person made by signing in: an authorization code redeemed
(RFC 6749 section 4.1.3) or an approved device code (RFC 8628 section 3.5); and the check,
before they are issued, that the person may still sign in and the session still stands.

Both answer alike: an RFC 9068 access token for the user; an ID token when ``openid`` was
granted (OpenID Connect Core 1.0 section 3.1.3.3); a refresh token when the client may use
that grant. Without ``offline_access`` the tokens are bound to the sign-in session (``sid``)
and die with it at logout; with it, they outlive the session (OpenID Connect Core 11). A
public client's refresh token is bound to the request's DPoP key, if it proved one; a
confidential client's is not, since it is bound to the client's credentials (RFC 9449
section 5).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from idp.oauth.access_token import session_bound_sid
from idp.oauth.errors import InvalidGrant
from idp.oauth.grants.base import GrantContext, TokenResponse, issue_access_token
from idp.oauth.id_token import ID_TOKEN_TYP, id_token_claims
from idp.oauth.refresh_tokens import issue_refresh_token
from idp.store.base import ClientRecord, UserRecord


async def signed_in_user(
    context: GrantContext, user_id: str, sid: str, scope: Sequence[str], ended: str
) -> UserRecord:
    """The user a grant was made by, still allowed to sign in, and whose sign-in session has
    not ended unless the grant is offline: tokens bound to an ended session would be inactive
    from the start (OpenID Connect Core 1.0 11). InvalidGrant else, ``ended`` saying the
    session ended."""
    bound_sid = session_bound_sid(sid, "offline_access" in scope)
    if bound_sid is not None and await context.store.grant_revoked((bound_sid,)):
        raise InvalidGrant(ended)
    user = await context.store.get_user(user_id)
    if user is None or user.disabled:
        raise InvalidGrant("the user is no longer allowed to sign in")
    return user


@dataclass(frozen=True)
class UserGrant:
    """What the person granted, and the sign-in it was granted in. ``grant_id`` is the
    access tokens' ``grant_id`` and the refresh tokens' family: ending it ends them all."""

    user: UserRecord
    scope: tuple[str, ...]
    grant_id: str
    sid: str
    auth_time: float
    amr: tuple[str, ...] = ()
    acr: str | None = None
    nonce: str | None = None
    resources: tuple[str, ...] = ()
    """The resources (RFC 8707) the grant was made for, which its refresh tokens keep."""


async def user_tokens(
    context: GrantContext, client: ClientRecord, grant: UserGrant, audiences: Sequence[str]
) -> TokenResponse:
    """The access token (for ``audiences``), ID token and refresh token of ``grant``."""
    settings = context.settings
    offline = "offline_access" in grant.scope
    access_token = issue_access_token(
        context,
        client,
        subject=grant.user.id,
        audiences=audiences,
        scope=grant.scope,
        grant_id=grant.grant_id,
        sid=session_bound_sid(grant.sid, offline),
        acr=grant.acr,
    )
    now = context.clock()
    extra: dict[str, str] = {}
    if "openid" in grant.scope:
        claims = id_token_claims(
            issuer=settings.issuer,
            user=grant.user,
            client_id=client.client_id,
            scope=grant.scope,
            nonce=grant.nonce,
            sid=grant.sid,
            auth_time=grant.auth_time,
            issued_at=int(now),
            lifetime=settings.id_token_ttl,
            access_token=access_token,
            alg=client.id_token_alg,
            amr=grant.amr,
            acr=grant.acr,
        )
        extra["id_token"] = context.ring.sign(client.id_token_alg, claims, ID_TOKEN_TYP, now)
    if "refresh_token" in client.grant_types:
        extra["refresh_token"] = await issue_refresh_token(
            context.store,
            settings,
            context.clock,
            client_id=client.client_id,
            user_id=grant.user.id,
            scope=grant.scope,
            sid=grant.sid,
            auth_time=grant.auth_time,
            offline=offline,
            family_id=grant.grant_id,
            dpop_jkt=context.dpop_jkt if client.is_public else None,
            resources=grant.resources,
        )
    return TokenResponse(
        access_token=access_token,
        expires_in=settings.access_token_ttl,
        scope=grant.scope,
        extra=extra,
    )
