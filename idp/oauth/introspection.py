"""Token introspection (RFC 7662): is this token active, and what does it carry.

Who may learn what (RFC 7662 section 4: the endpoint must keep a caller from scanning for
tokens, and may answer different callers differently, section 2.2):

- only confidential clients, authenticated as at the token endpoint; a public client has
  no secret, so anyone could pose as it;
- an access token is described to the client it was issued to, and to any client one of
  whose registered audiences is in the token's ``aud`` (a resource server registered with
  its own audience); to any other client it is ``{"active": false}``;
- a refresh token is described only to the client it was issued to; to any other client
  it is ``{"active": false}``, like an unknown token, so nothing is learnt about it.

``{"active": false}`` also answers every token that is unknown, malformed, expired, signed
by a foreign or revoked key, revoked by jti, issued from a grant or session that has ended,
rotated or revoked, or whose user is gone or disabled or whose client was deleted (section
2.2: no reason is given). Access tokens go through the same standing check as at UserInfo
and the admin API (:func:`idp.oauth.bearer.token_standing`).
"""

from __future__ import annotations

from typing import Any

from idp.oauth.bearer import token_standing
from idp.oauth.presented_tokens import (
    TokenCheck,
    is_access_token_shaped,
    known_refresh_token,
    refresh_token_is_live,
    signed_access_token,
)
from idp.store.base import ClientRecord, RefreshTokenRecord, UserRecord
from idp.verify.errors import VerificationError
from idp.verify.result import VerifiedToken

INACTIVE: dict[str, Any] = {"active": False}

# Members of an access token copied into the answer when present (RFC 7662 section 2.2;
# cnf, the DPoP key a token is bound to: RFC 9449 section 6.2; act, who acts for the
# subject of an exchanged token: RFC 8693 section 4.1).
_ACCESS_TOKEN_MEMBERS = (
    "scope",
    "client_id",
    "exp",
    "iat",
    "nbf",
    "sub",
    "aud",
    "iss",
    "jti",
    "cnf",
    "act",
)


def may_introspect_access_token(caller: ClientRecord, token: VerifiedToken) -> bool:
    """The token was issued to ``caller``, or is addressed to one of ``caller``'s audiences."""
    if token.client_id == caller.client_id:
        return True
    return any(audience in caller.audiences for audience in token.audience)


def access_token_answer(token: VerifiedToken, user: UserRecord | None) -> dict[str, Any]:
    """The introspection response for an active access token (RFC 7662 section 2.2); a
    DPoP-bound token is of type ``DPoP`` and shows its ``cnf`` (RFC 9449 section 6.2)."""
    token_type = "DPoP" if "cnf" in token.claims else "Bearer"
    answer: dict[str, Any] = {"active": True, "token_type": token_type}
    for name in _ACCESS_TOKEN_MEMBERS:
        if name in token.claims:
            answer[name] = token.claims[name]
    if user is not None:
        answer["username"] = user.username
    return answer


def refresh_token_answer(
    record: RefreshTokenRecord, user: UserRecord, issuer: str
) -> dict[str, Any]:
    """The introspection response for an active refresh token (RFC 7662 section 2.2)."""
    answer: dict[str, Any] = {"active": True, "token_type": "refresh_token"}
    if record.scope:
        answer["scope"] = " ".join(record.scope)
    answer.update(
        client_id=record.client_id,
        username=user.username,
        sub=record.user_id,
        exp=int(record.expires_at),
        iat=int(record.created_at),
        iss=issuer,
    )
    return answer


async def introspect(token: str, caller: ClientRecord, check: TokenCheck) -> dict[str, Any]:
    """The RFC 7662 section 2.2 answer for ``token`` as ``caller`` may see it."""
    if is_access_token_shaped(token):
        return await _introspect_access_token(token, caller, check)
    return await _introspect_refresh_token(token, caller, check)


async def _introspect_access_token(
    token: str, caller: ClientRecord, check: TokenCheck
) -> dict[str, Any]:
    verified = signed_access_token(token, check)
    if verified is None or not may_introspect_access_token(caller, verified):
        return INACTIVE
    try:
        active = await token_standing(verified, check.store)
    except VerificationError:
        return INACTIVE
    return access_token_answer(active.token, active.user)


async def _introspect_refresh_token(
    token: str, caller: ClientRecord, check: TokenCheck
) -> dict[str, Any]:
    record = await known_refresh_token(token, check)
    if record is None or record.client_id != caller.client_id:
        return INACTIVE
    if not refresh_token_is_live(record, check.clock()):
        return INACTIVE
    user = await check.store.get_user(record.user_id)
    if user is None or user.disabled:
        return INACTIVE
    return refresh_token_answer(record, user, check.issuer)
