"""Token revocation (RFC 7009): a client says it no longer needs a token.

- A refresh token ends its whole grant (section 2.1: the server should also invalidate
  the grant): every refresh token of the family, the live successor included, and every
  access token issued from the grant (they carry its id as ``grant_id``).
- An access token is revoked by its ``jti``: the row lives until the token's own ``exp``
  plus the verification leeway.
- Either way the IdP refuses the token from then on at introspection, UserInfo and the
  admin API (:func:`idp.oauth.bearer.token_standing`). A resource server that verifies
  JWTs itself does not ask, so it keeps accepting the token until it expires: that is why
  access tokens are short-lived, and why introspection exists.
- Only the client a token was issued to may revoke it (section 2.1). A token this server
  knows as issued to another client is left alone; a confidential client (authenticated)
  is told so with invalid_request, but a public client, which anyone can pose as, gets
  the same empty 200 as for garbage, so that nobody can test whether a token is live.
- Unknown, malformed, expired or already revoked tokens change nothing and are answered
  like a success (section 2.2: the client could do nothing with such an error).
"""

from __future__ import annotations

from idp.config import DEFAULT_LEEWAY
from idp.oauth.errors import InvalidRequest
from idp.oauth.presented_tokens import (
    TokenCheck,
    is_access_token_shaped,
    known_refresh_token,
    signed_access_token,
)
from idp.store.base import ClientRecord


class ForeignToken(InvalidRequest):
    """The token was issued to another client than the one asking (RFC 7009 section 2.1)."""

    def __init__(self) -> None:
        super().__init__("the token was not issued to this client")


async def revoke(token: str, caller: ClientRecord, check: TokenCheck) -> bool:
    """Revoke ``token`` on behalf of ``caller``; say whether anything changed.

    Raises ForeignToken for a token issued to another client, unless the caller is a
    public client: it proved nothing, so it learns nothing (the answer is as for garbage).
    """
    try:
        if is_access_token_shaped(token):
            return await _revoke_access_token(token, caller, check)
        return await _revoke_refresh_token(token, caller, check)
    except ForeignToken:
        if caller.is_public:
            return False
        raise


async def _revoke_access_token(token: str, caller: ClientRecord, check: TokenCheck) -> bool:
    verified = signed_access_token(token, check)
    if verified is None:
        return False
    if verified.client_id != caller.client_id:
        raise ForeignToken()
    # Kept past exp by the leeway the bearer check allows, so no endpoint accepts it late.
    return await check.store.revoke_access_token(
        verified.jti, verified.client_id, check.clock(), float(verified.expires_at + DEFAULT_LEEWAY)
    )


async def _revoke_refresh_token(token: str, caller: ClientRecord, check: TokenCheck) -> bool:
    record = await known_refresh_token(token, check)
    if record is None:
        return False
    if record.client_id != caller.client_id:
        raise ForeignToken()
    return await check.store.revoke_refresh_family(record.family_id, check.clock()) > 0
