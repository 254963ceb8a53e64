"""The device code grant (RFC 8628 section 3.4 and 3.5).

Each poll is one serialised store step that applies :func:`idp.oauth.device.poll_device_code`:
authorization_pending until the person decides, slow_down (and a longer interval) when
polled too soon, access_denied once denied, expired_token once expired, and tokens once,
when approved: as for an authorization code (an access token, an ID token when ``openid``
was granted, a refresh token when the client may use that grant), bound to the session the
approval was made in unless ``offline_access`` was granted (OpenID Connect Core 1.0 11).
"""

from __future__ import annotations

from idp.oauth.device import (
    DEVICE_CODE_GRANT,
    MAX_DEVICE_CODE_LENGTH,
    PollOutcome,
    device_code_hash,
    poll_device_code,
)
from idp.oauth.errors import (
    AuthorizationPending,
    DeviceAccessDenied,
    ExpiredToken,
    InvalidGrant,
    OAuthError,
    SlowDown,
)
from idp.oauth.grants.base import (
    GrantContext,
    TokenRequest,
    TokenResponse,
    check_grant_allowed,
    required_param,
)
from idp.oauth.grants.user_tokens import UserGrant, signed_in_user, user_tokens
from idp.oauth.resources import resolve_audiences
from idp.store.base import ClientRecord, DeviceCodeRecord, UserRecord

REFUSALS: dict[PollOutcome, tuple[type[OAuthError], str]] = {
    PollOutcome.EXPIRED: (ExpiredToken, "the device code has expired"),
    PollOutcome.WRONG_CLIENT: (InvalidGrant, "the device code was issued to another client"),
    PollOutcome.REUSED: (InvalidGrant, "the device code has already been used"),
    PollOutcome.DENIED: (DeviceAccessDenied, "the user denied the request"),
    PollOutcome.SLOW_DOWN: (SlowDown, "polled too often: wait longer between requests"),
    PollOutcome.PENDING: (AuthorizationPending, "the user has not yet approved the request"),
}


async def redeemed_device(
    context: GrantContext, client: ClientRecord, device_code: str
) -> DeviceCodeRecord:
    """The approved device code, redeemed by this poll; else the poll's error (section 3.5)."""
    if len(device_code) > MAX_DEVICE_CODE_LENGTH:
        raise InvalidGrant("the device code is invalid")
    now = context.clock()
    polled = await context.store.poll_device_code(
        device_code_hash(device_code),
        lambda device: poll_device_code(device, client.client_id, now)[1],
    )
    if polled is None:
        raise InvalidGrant("the device code is invalid")
    before, after = polled
    outcome, _ = poll_device_code(before, client.client_id, now)
    if outcome is not PollOutcome.REDEEMED:
        refusal, description = REFUSALS[outcome]
        raise refusal(description)
    return after


async def approving_user(context: GrantContext, device: DeviceCodeRecord) -> UserRecord:
    """The user who approved, still allowed to sign in, whose session (unless the grant is
    offline) has not ended."""
    if device.user_id is None or device.sid is None:
        raise InvalidGrant("the device code is invalid")
    ended = "the sign-in session that approved the device has ended"
    return await signed_in_user(context, device.user_id, device.sid, device.scope, ended)


class DeviceCodeGrant:
    """Exchange an approved device code for tokens, once."""

    grant_type = DEVICE_CODE_GRANT

    async def handle(
        self, request: TokenRequest, client: ClientRecord, context: GrantContext
    ) -> TokenResponse:
        check_grant_allowed(client, self.grant_type)
        device_code = required_param(request, "device_code")
        device = await redeemed_device(context, client, device_code)
        user = await approving_user(context, device)
        return await device_tokens(request, client, context, device, user)


async def device_tokens(
    request: TokenRequest,
    client: ClientRecord,
    context: GrantContext,
    device: DeviceCodeRecord,
    user: UserRecord,
) -> TokenResponse:
    """The tokens of an approved device code, as for an authorization code."""
    auth_time = device.auth_time if device.auth_time is not None else device.decided_at or 0.0
    grant = UserGrant(
        user=user,
        scope=device.scope,
        grant_id=device.id,
        sid=device.sid or "",
        auth_time=auth_time,
        amr=device.amr,
        acr=device.acr,
    )
    audiences = resolve_audiences(request.resources, client, context.settings.issuer)
    return await user_tokens(context, client, grant, audiences)
