"""Bearer authentication with this server's own JWT access tokens (RFC 6750, RFC 9068).

A protected endpoint reads the token from the Authorization header (RFC 6750 section 2.1;
UserInfo also takes the form body, section 2.2), verifies it against the published keys of
the in-memory ring (a revoked key is never among them), and checks the claims RFC 9068
section 4 asks a resource server to check, by the same rules as the verifier library
(:mod:`idp.verify.compact`), so the IdP and its resource servers agree on what a valid
access token is.
:func:`active_access_token` is the one check every endpoint that accepts our tokens uses
(UserInfo, the admin API, introspection): on top of the signature and claims, the token
must not be revoked (by its ``jti``, its grant or its session, RFC 7009 section 2), its
client must still exist and its user must still exist and be enabled.
Failures are the verifier library's errors (:mod:`idp.verify.errors`), carrying the RFC
6750 section 3.1 codes; the HTTP layer answers them with their ``WWW-Authenticate``
challenge. The token itself never appears in an error, a log line or the audit trail.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from idp.config import DEFAULT_LEEWAY
from idp.keyring.material import SigningKey
from idp.keyring.ring import InvalidSignature, verify_signature
from idp.oauth.access_token import GRANT_ID_CLAIM, SESSION_ID_CLAIM
from idp.oauth.errors import OAuthError
from idp.oauth.scopes import parse_scope
from idp.store.base import RevocationStore, Store, UserRecord, UserStore
from idp.verify import compact as rules
from idp.verify.errors import InsufficientScope, InvalidToken, MissingToken
from idp.verify.result import VerifiedToken

MAX_TOKEN_LENGTH = 8192
# b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=" (RFC 6750 section 2.1)
_B64TOKEN = re.compile(r"^[A-Za-z0-9\-._~+/]+=*$")

VerificationKeys = Mapping[str, tuple[str, SigningKey]]
"""kid -> (alg, public key): the ring's published keys."""


def bearer_token(authorizations: list[str], form: Mapping[str, str] | None = None) -> str:
    """The token of the one ``Authorization: Bearer`` header (RFC 6750 section 2.1).

    With ``form`` (a form-encoded body), ``access_token`` there is accepted instead
    (section 2.2); a token sent both ways is refused.
    """
    scheme, token = presented_token(authorizations, form)
    if scheme != BEARER:
        raise InvalidToken("the Authorization header must use the Bearer scheme")
    return token


BEARER = "Bearer"
DPOP = "DPoP"


def presented_token(
    authorizations: list[str], form: Mapping[str, str] | None = None
) -> tuple[str, str]:
    """The scheme (``Bearer`` or ``DPoP``) and the token of the one Authorization header
    (RFC 6750 section 2.1, RFC 9449 section 7.1), schemes compared case-insensitively.

    With ``form``, ``access_token`` there is accepted instead, as a bearer token (RFC 6750
    section 2.2); a token sent both ways is refused.
    """
    from_form = form.get("access_token") if form else None
    if not authorizations and not from_form:
        raise MissingToken("a bearer access token is required")
    if len(authorizations) > 1 or (authorizations and from_form):
        raise InvalidToken("the access token must be sent one way only")
    if from_form:
        return BEARER, _well_formed(from_form)
    scheme, _, value = authorizations[0].strip().partition(" ")
    token = value.strip()
    named = {"bearer": BEARER, "dpop": DPOP}.get(scheme.lower())
    if named is None or not token:
        raise InvalidToken("the Authorization header must use the Bearer or DPoP scheme")
    return named, _well_formed(token)


def _well_formed(token: str) -> str:
    if len(token) > MAX_TOKEN_LENGTH or not _B64TOKEN.match(token):
        raise InvalidToken("the bearer token is malformed")
    return token


def verify_access_token(
    token: str,
    keys: VerificationKeys,
    *,
    issuer: str,
    audience: str | None,
    now: float,
    leeway: int = DEFAULT_LEEWAY,
) -> VerifiedToken:
    """Verify one of our access tokens and its claims (RFC 9068 section 4).

    The signature must verify under a published key of the ring (kid and alg must match);
    then the header and the claims go through the very rules resource servers apply with
    :mod:`idp.verify` (``typ`` at+jwt, no ``crit`` or self-named keys; ``iss`` exactly
    ``issuer``, ``aud`` containing ``audience`` (any audience when None: UserInfo takes a
    token whatever resource it was meant for), ``exp`` / ``nbf`` / ``iat`` within
    ``leeway`` seconds, ``sub``, ``client_id`` and ``jti`` present). The scope must also be
    well formed (RFC 6749 section 3.3).
    """
    try:
        header, claims = verify_signature(token, keys)
    except InvalidSignature as exc:
        raise InvalidToken(str(exc)) from None
    return access_token_claims(
        header, claims, keys, issuer=issuer, audience=audience, now=now, leeway=leeway
    )


def access_token_claims(
    header: dict[str, Any],
    claims: dict[str, Any],
    keys: VerificationKeys,
    *,
    issuer: str,
    audience: str | None,
    now: float,
    leeway: int = DEFAULT_LEEWAY,
) -> VerifiedToken:
    """The rules of :func:`verify_access_token` after the signature, for a JWS whose
    ``header`` and ``claims`` already verified under ``keys`` (RFC 9068 section 4)."""
    checked = rules.check_header(header, (keys[header["kid"]][0],))
    # From here on the signature holds: a refusal is attributed to the token's client.
    named = claims.get("client_id")
    client_id = named if isinstance(named, str) and named else None
    audiences = None if audience is None else frozenset((audience,))
    try:
        verified = rules.check_claims(
            claims, checked, issuer=issuer, audiences=audiences, now=now, leeway=leeway
        )
    except InvalidToken as exc:
        raise InvalidToken(exc.description, client_id=client_id) from None
    try:
        parse_scope(" ".join(verified.scopes))
    except OAuthError:
        raise InvalidToken("the token's scope claim is malformed", client_id=client_id) from None
    return verified


def require_scope(token: VerifiedToken, scope: str) -> None:
    """Refuse a token that lacks ``scope`` with insufficient_scope (RFC 6750 section 3.1)."""
    if scope not in token.scopes:
        raise InsufficientScope((scope,), client_id=token.client_id)


class StandingStore(RevocationStore, UserStore, Protocol):
    """What checking a token's standing reads: revocations, clients' existence and users."""


@dataclass(frozen=True)
class ActiveToken:
    """A verified token still in good standing, with its user (None when the subject is the
    client itself, as for client_credentials)."""

    token: VerifiedToken
    user: UserRecord | None


def revocation_ids(token: VerifiedToken) -> tuple[str, ...]:
    """The ids whose revocation ends this token: its grant, and its session if bound to one."""
    found = (token.claims.get(GRANT_ID_CLAIM), token.claims.get(SESSION_ID_CLAIM))
    return tuple(value for value in found if isinstance(value, str) and value)


async def token_standing(token: VerifiedToken, store: StandingStore) -> ActiveToken:
    """Refuse a verified token that was revoked or whose client or user is gone (RFC 7009 2).

    One store statement covers the revoked ``jti``, the ended grant or session and the
    deleted client; the user is read only when the subject is a person, and must exist and
    be enabled.
    """
    client_id = token.client_id
    person = token.subject if token.subject != client_id else None
    issued_at = token.claims.get("iat")
    if await store.access_token_revoked(
        token.jti,
        client_id,
        revocation_ids(token),
        user_id=person,
        issued_at=float(issued_at) if isinstance(issued_at, int | float) else 0.0,
    ):
        raise InvalidToken("the token has been revoked", client_id=client_id)
    if person is None:
        return ActiveToken(token, None)
    user = await store.get_user(token.subject)
    if user is None or user.disabled:
        raise InvalidToken("the token's user cannot sign in", client_id=client_id)
    return ActiveToken(token, user)


async def active_access_token(
    token: str,
    keys: VerificationKeys,
    store: Store,
    *,
    issuer: str,
    audience: str | None,
    now: float,
) -> ActiveToken:
    """Verify one of our access tokens (RFC 9068 section 4) and that it is still in standing.

    The one bearer check of the IdP's own endpoints: see :func:`verify_access_token` and
    :func:`token_standing`.
    """
    verified = verify_access_token(token, keys, issuer=issuer, audience=audience, now=now)
    return await token_standing(verified, store)
