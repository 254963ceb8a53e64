"""Token exchange (RFC 8693): which presented tokens are acceptable, and what the new token says.

Decisions made here (the grant handler in :mod:`idp.oauth.grants.token_exchange` runs them):

- Subject and actor tokens must be this server's own (RFC 8693 section 2.1 leaves the kinds
  to the server): an access token (``..:access_token``, an RFC 9068 ``at+jwt``) or an ID
  token (``..:id_token``); ``..:jwt`` takes either, told apart by the JWS ``typ``. Each must
  verify under a key the ring publishes, carry our ``iss``, not be expired, and still be in
  standing: not revoked by jti, grant or session, its user present and enabled, its client
  not deleted (RFC 7009 section 2). An ID token may have been issued to any of our clients.
- A subject token must name a person: a client_credentials token (whose subject is a client)
  is refused, since the new token's ``sub`` is the subject's and its ``client_id`` another's.
- Every refusal of a subject or actor token (invalid, expired, revoked, or unacceptable by
  policy) is ``invalid_request``, as RFC 8693 section 2.2.2 requires; the description says
  which. A missing, unsupported or malformed parameter is ``invalid_request`` too.
- Delegation (section 4.1): an actor token makes the new token carry ``act: {sub: actor}``;
  an ``act`` the subject token already had is nested under it, the most recent actor outermost.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from idp.clock import Clock
from idp.keyring.ring import InvalidSignature, KeyRing
from idp.oauth.access_token import ACCESS_TOKEN_TYP, GRANT_ID_CLAIM, SESSION_ID_CLAIM
from idp.oauth.authorization import STANDARD_SCOPES
from idp.oauth.bearer import StandingStore, access_token_claims, token_standing
from idp.oauth.errors import InvalidRequest
from idp.oauth.id_token import InvalidIdToken, check_id_token, id_token_client
from idp.store.base import ClientRecord
from idp.verify.errors import VerificationError

ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"
ID_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:id_token"
JWT_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:jwt"
SUBJECT_TOKEN_TYPES = (ACCESS_TOKEN_TYPE, ID_TOKEN_TYPE, JWT_TOKEN_TYPE)
"""The token types accepted as subject or actor token (RFC 8693 section 3)."""
ISSUED_TOKEN_TYPE = ACCESS_TOKEN_TYPE
"""The only type issued: an RFC 9068 access token (RFC 8693 section 2.2.1)."""
MAX_PRESENTED_TOKEN_LENGTH = 8192


@dataclass(frozen=True)
class TokenCheck:
    """What checking a presented token needs: our issuer, the ring as of now, the clock and
    the store's revocations and users."""

    issuer: str
    ring: KeyRing
    clock: Clock
    store: StandingStore


@dataclass(frozen=True)
class PresentedToken:
    """A subject or actor token found acceptable: whom it names and what it carries.

    ``scope`` is None for an ID token, which carries none; ``grant_id`` and ``sid`` are the
    grant and session whose revocation must end what is issued from it.
    """

    subject: str
    client_id: str
    scope: tuple[str, ...] | None
    act: Mapping[str, Any] | None
    grant_id: str | None
    sid: str | None
    auth_time: float | None
    acr: str | None


def check_token_type(token_type: str | None, name: str) -> str:
    """A supported token type URI (RFC 8693 section 3); invalid_request for any other."""
    if not token_type:
        raise InvalidRequest(f"{name} is required")
    if token_type not in SUBJECT_TOKEN_TYPES:
        raise InvalidRequest(f"{name} {token_type!r} is not supported")
    return token_type


def check_requested_token_type(requested: str | None) -> None:
    """Only access tokens are issued (RFC 8693 section 2.1: the server may refuse others)."""
    if requested is not None and requested != ISSUED_TOKEN_TYPE:
        raise InvalidRequest(f"requested_token_type {requested!r} is not supported")


def _string(claims: Mapping[str, Any], name: str) -> str | None:
    value = claims.get(name)
    return value if isinstance(value, str) and value else None


def _number(claims: Mapping[str, Any], name: str) -> float | None:
    value = claims.get(name)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _act(claims: Mapping[str, Any]) -> Mapping[str, Any] | None:
    value = claims.get("act")
    return value if isinstance(value, dict) else None


async def presented_token(
    token: str, token_type: str, check: TokenCheck, label: str
) -> PresentedToken:
    """The subject or actor token ``token`` if it is ours and in standing; invalid_request else.

    ``label`` names it in the error ("subject token", "actor token").
    """
    if len(token) > MAX_PRESENTED_TOKEN_LENGTH or token.count(".") != 2:
        raise InvalidRequest(f"the {label} is invalid")
    try:
        header, claims = check.ring.verify(token)
    except InvalidSignature:
        raise InvalidRequest(f"the {label} is not signed by this server") from None
    is_access_token = header.get("typ") == ACCESS_TOKEN_TYP
    if token_type == ACCESS_TOKEN_TYPE and not is_access_token:
        raise InvalidRequest(f"the {label} is not an access token of this server")
    if token_type == ID_TOKEN_TYPE and is_access_token:
        raise InvalidRequest(f"the {label} is not an ID token of this server")
    if is_access_token:
        return await _access_token(header, claims, check, label)
    return await _id_token(header, claims, check, label)


async def _access_token(
    header: dict[str, Any], claims: dict[str, Any], check: TokenCheck, label: str
) -> PresentedToken:
    """An RFC 9068 access token of ours, whose signature verified, live and in standing
    (RFC 9068 section 4); we issued it, so no leeway applies to its expiry."""
    now = check.clock()
    try:
        verified = access_token_claims(
            header, claims, check.ring.verification, issuer=check.issuer, audience=None, now=now
        )
    except VerificationError:
        raise InvalidRequest(f"the {label} is invalid or expired") from None
    if verified.expires_at <= now:
        raise InvalidRequest(f"the {label} has expired")
    try:
        await token_standing(verified, check.store)
    except VerificationError:
        raise InvalidRequest(f"the {label} has been revoked") from None
    return PresentedToken(
        subject=verified.subject,
        client_id=verified.client_id,
        scope=tuple(verified.scopes),
        act=_act(claims),
        grant_id=_string(claims, GRANT_ID_CLAIM),
        sid=_string(claims, SESSION_ID_CLAIM),
        auth_time=_number(claims, "auth_time"),
        acr=_string(claims, "acr"),
    )


async def _id_token(
    header: Mapping[str, Any],
    claims: Mapping[str, Any],
    check: TokenCheck,
    label: str,
) -> PresentedToken:
    """An ID token of ours (OIDC Core 1.0 section 2), unexpired, its session and user live."""
    try:
        check_id_token(header, claims, check.issuer)
    except InvalidIdToken:
        raise InvalidRequest(f"the {label} is not an ID token of this server") from None
    expires_at = _number(claims, "exp")
    if expires_at is None or expires_at <= check.clock():
        raise InvalidRequest(f"the {label} has expired")
    subject = str(claims["sub"])
    client_id = id_token_client(claims) or ""
    sid = _string(claims, "sid")
    store = check.store
    if await store.access_token_revoked(
        _string(claims, "jti") or "",
        client_id,
        (sid,) if sid else (),
        user_id=subject,
        issued_at=_number(claims, "iat") or 0.0,
    ):
        raise InvalidRequest(f"the {label} has been revoked")
    user = await store.get_user(subject)
    if user is None or user.disabled:
        raise InvalidRequest(f"the {label}'s user cannot sign in")
    return PresentedToken(
        subject=subject,
        client_id=client_id,
        scope=None,
        act=_act(claims),
        grant_id=None,
        sid=sid,
        auth_time=_number(claims, "auth_time"),
        acr=_string(claims, "acr"),
    )


def check_subject(subject: PresentedToken, client: ClientRecord) -> None:
    """The subject token names a person, and was issued to a client whose tokens ``client``
    may exchange (its ``token_exchange_subject_clients``; empty: any client)."""
    if subject.subject == subject.client_id:
        raise InvalidRequest("the subject token names a client, not a person")
    allowed = client.token_exchange_subject_clients
    if allowed and subject.client_id not in allowed:
        raise InvalidRequest("this client may not exchange tokens issued to that client")


def delegation_act(
    actor: PresentedToken | None, subject: PresentedToken
) -> Mapping[str, Any] | None:
    """The new token's ``act`` claim (RFC 8693 section 4.1): the actor's ``sub``, with the
    subject token's own ``act`` nested under it; the subject's ``act`` unchanged when no one
    new acts (impersonation keeps the chain already recorded)."""
    if actor is None:
        return subject.act
    act: dict[str, Any] = {"sub": actor.subject}
    if subject.act is not None:
        act["act"] = dict(subject.act)
    return act


def scope_ceiling(subject: PresentedToken, client: ClientRecord) -> tuple[str, ...]:
    """What the new token may carry at most: the subject token's scope that the client may
    also use (the standard OpenID scopes and its registered ones). An ID token carries no
    scope: its ceiling is ``openid`` and the client's registered scopes."""
    allowed = set(STANDARD_SCOPES) | set(client.scope)
    offered = subject.scope if subject.scope is not None else ("openid", *client.scope)
    return tuple(s for s in dict.fromkeys(offered) if s in allowed)
