"""Who may call the admin API: our own RFC 9068 access tokens, for a machine client, with
``idp:admin``, for the admin audience (RFC 6750 bearer tokens; a DPoP-bound token with the
DPoP scheme and a proof of its key, RFC 9449 section 7)."""

from __future__ import annotations

from starlette.requests import Request

from idp.http.services import Services
from idp.oauth.bearer import active_access_token, presented_token, require_scope
from idp.oauth.dpop_resource import check_token_binding
from idp.oauth.registration import ADMIN_SCOPE, admin_audience
from idp.verify.errors import InvalidToken
from idp.verify.result import VerifiedToken


async def authenticate(request: Request, found: Services) -> VerifiedToken:
    """Accept only our own access tokens for the admin audience carrying ``idp:admin``.

    The token must be in good standing (not revoked, its user enabled: the same check as
    UserInfo and introspection), and its client must still exist and still hold the scope,
    so deleting an admin client (or taking the scope away) shuts its tokens out at once.
    A DPoP-bound token is taken only as UserInfo takes it (``check_token_binding``).
    """
    scheme, token = presented_token(request.headers.getlist("authorization"))
    issuer = found.settings.issuer
    now = found.clock()
    active = await active_access_token(
        token,
        found.keys.ring.verification,
        found.store,
        issuer=issuer,
        audience=admin_audience(issuer),
        now=now,
    )
    verified = active.token
    await check_token_binding(
        verified,
        token,
        scheme,
        request.headers.getlist("dpop"),
        found.store,
        found.dpop,
        method=request.method,
        url=f"{issuer}{request.url.path}",
        now=now,
    )
    require_scope(verified, ADMIN_SCOPE)
    require_client_subject(verified)
    client = await found.store.get_client(verified.client_id)
    if client is None:
        raise InvalidToken("the token's client no longer exists", client_id=verified.client_id)
    if ADMIN_SCOPE not in client.scope:
        raise InvalidToken(
            f"the token's client no longer holds the scope {ADMIN_SCOPE}",
            client_id=verified.client_id,
        )
    return verified


class UserTokenRefused(InvalidToken):
    """A token issued for a person (authorization_code, refresh_token) at the admin API."""

    def __init__(self, verified: VerifiedToken) -> None:
        super().__init__(
            "the admin API takes only a client's own token (client_credentials), "
            "not one issued for a user",
            client_id=verified.client_id,
        )
        self.subject = verified.subject


def require_client_subject(verified: VerifiedToken) -> None:
    """Refuse a token whose subject is a user rather than the client itself.

    Admin rights belong to machine clients: a client_credentials token has ``sub`` equal
    to its ``client_id`` and no ``auth_time`` (RFC 9068 section 2.2); a user's has both.
    """
    if verified.subject != verified.client_id or "auth_time" in verified.claims:
        raise UserTokenRefused(verified)
