"""Dynamic client registration (RFC 7591) and management (RFC 7592): the operations behind
/register and /register/{client_id}, and the initial access tokens administrators make, list
and revoke.

The metadata rules are :mod:`idp.oauth.dynamic_registration`'s. Every change is audited in
the same transaction, by the actor the adapter names (``registration:<address>``), with
the initial access token's id when one was used. A registered client is an ordinary client
afterwards: ``idp clients list`` shows it, an administrator may change or delete it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from idp.admin.context import AdminContext, InvalidInput
from idp.identifiers import new_identifier
from idp.oauth.client_auth import hash_client_secret, new_client_secret
from idp.oauth.client_secret_jwt import CLIENT_SECRET_JWT, seal_client_secret
from idp.oauth.dynamic_registration import (
    InvalidToken,
    client_request,
    open_registration_refusal,
    registered_client,
    registration_token_matches,
    replaced_client,
    secret_matches,
)
from idp.oauth.errors import InvalidRequest
from idp.oauth.uris import backchannel_rules
from idp.store.base import (
    ClientRecord,
    InitialAccessTokenRecord,
    InitialAccessTokenSummary,
    NotFound,
)

MAX_INITIAL_TOKEN_LIFETIME = 365 * 86400
"""The longest an initial access token may live: a year."""

MAX_INITIAL_TOKEN_USES = 100000

_NOT_YOURS = "the registration access token is not valid for this client"


@dataclass(frozen=True)
class Registration:
    """A client just registered, with what is shown this once: its secret (when its method
    needs one) and its registration access token."""

    client: ClientRecord
    client_secret: str | None
    registration_access_token: str


async def create_initial_access_token(
    ctx: AdminContext, expires_in: int, uses: int | None = None
) -> tuple[InitialAccessTokenRecord, str]:
    """Make an initial access token (RFC 7591 section 3) valid ``expires_in`` seconds and,
    with ``uses``, for that many registrations; returned once (only its SHA-256 is kept).
    Audited as ``client.registration_token`` (its id, expiry and uses; never the token)."""
    if not 1 <= expires_in <= MAX_INITIAL_TOKEN_LIFETIME:
        raise InvalidInput("an initial access token lives from 1 second to 365 days")
    if uses is not None and not 1 <= uses <= MAX_INITIAL_TOKEN_USES:
        raise InvalidInput(f"an initial access token has 1 to {MAX_INITIAL_TOKEN_USES} uses")
    token = new_client_secret()
    now = ctx.clock()
    record = InitialAccessTokenRecord(
        id=new_identifier(12),
        token_hash=hash_client_secret(token),
        created_at=now,
        expires_at=now + expires_in,
        uses_left=uses,
    )
    audit = ctx.audit(
        "client.registration_token",
        record.id,
        {"expires_at": record.expires_at, "uses": uses},
    )
    await ctx.store.create_initial_access_token(record, audit)
    return record, token


async def list_initial_access_tokens(
    ctx: AdminContext, include_spent: bool = False
) -> list[InitialAccessTokenSummary]:
    """The initial access tokens that can still register a client (not expired, a use left),
    oldest first; with ``include_spent``, expired and used-up ones too (housekeeping deletes
    a token once it has expired). Never a token or its hash."""
    return await ctx.store.list_initial_access_tokens(None if include_spent else ctx.clock())


async def revoke_initial_access_token(ctx: AdminContext, token_id: str) -> None:
    """Revoke the initial access token ``token_id``: it registers no client from now on
    (RFC 7591 section 3 leaves revocation to the server). Clients it registered stay.
    Audited as ``client.registration_token.revoke`` (target the id); raises NotFound."""
    audit = ctx.audit("client.registration_token.revoke", token_id)
    if not await ctx.store.delete_initial_access_token(token_id, audit):
        raise NotFound(f"no initial access token with id {token_id!r}")


async def _check_initial_token(ctx: AdminContext, token: str | None) -> None:
    """Refuse a registration whose initial access token is unknown, expired or used up, or
    that has none while open registration is off (RFC 7591 section 3, RFC 6750 section 3.1)."""
    if token is not None:
        if await ctx.store.get_initial_access_token(hash_client_secret(token), ctx.clock()) is None:
            raise InvalidToken("the initial access token is unknown, expired or used up")
        return
    if not ctx.settings.open_registration:
        raise InvalidToken("registering a client needs an initial access token")


async def _spend_initial_token(ctx: AdminContext, token: str | None) -> str | None:
    """Count one use of the initial access token; its id (None without one)."""
    if token is None:
        return None
    used = await ctx.store.use_initial_access_token(hash_client_secret(token), ctx.clock())
    if used is None:
        raise InvalidToken("the initial access token is unknown, expired or used up")
    return used.id


async def register_client(
    ctx: AdminContext, metadata: Mapping[str, Any], initial_token: str | None
) -> Registration:
    """Register a client from its metadata (RFC 7591 section 3.1), with an initial access
    token or, when open registration is on, a public native app without one.

    Raises InvalidToken, InvalidClientMetadataError or InvalidRedirectUriError; the token's
    use is counted only once the metadata has passed.
    """
    await _check_initial_token(ctx, initial_token)
    request = client_request(metadata)
    record, secret = registered_client(request, ctx.clock(), backchannel_rules(ctx.settings))
    if initial_token is None:
        refusal = open_registration_refusal(request)
        if refusal is not None:
            raise InvalidToken(f"{refusal}; other clients need an initial access token")
    token_id = await _spend_initial_token(ctx, initial_token)
    registration_token = new_client_secret()
    sealed = None
    if secret is not None and record.token_endpoint_auth_method == CLIENT_SECRET_JWT:
        sealed = seal_client_secret(secret, record.client_id, ctx.settings.key_encryption_key)
    record = replace(
        record, registration_token_hash=hash_client_secret(registration_token), secret_sealed=sealed
    )
    detail = {"name": record.name, "initial_access_token": token_id}
    await ctx.store.create_client(record, ctx.audit("client.register", record.client_id, detail))
    return Registration(record, secret, registration_token)


async def registered(ctx: AdminContext, client_id: str, registration_token: str) -> ClientRecord:
    """The client whose registration access token this is (RFC 7592 section 2.1); raises
    InvalidToken, the same whether the client does not exist or the token is another's."""
    client = await ctx.store.get_client(client_id)
    matches = registration_token_matches(client, registration_token)
    if client is None or not matches:
        raise InvalidToken(_NOT_YOURS)
    return client


def _check_identity(client: ClientRecord, metadata: Mapping[str, Any]) -> None:
    """RFC 7592 section 2.2: the body names the client's own client_id, and a client_secret
    in it is the client's current one."""
    if metadata.get("client_id") != client.client_id:
        raise InvalidRequest("client_id must be this client's client_id")
    secret = metadata.get("client_secret")
    if secret is not None and (not isinstance(secret, str) or not secret_matches(client, secret)):
        raise InvalidRequest("client_secret is not this client's secret")


async def replace_registration(
    ctx: AdminContext, client_id: str, registration_token: str, metadata: Mapping[str, Any]
) -> ClientRecord:
    """Replace a registered client's metadata with ``metadata`` (RFC 7592 section 2.2), by
    the rules of registration; the client_id, secret and token stay. Audited as
    ``client.update`` with the fields that changed."""
    current = await registered(ctx, client_id, registration_token)
    _check_identity(current, metadata)
    updated = replaced_client(current, client_request(metadata), backchannel_rules(ctx.settings))
    changed = [
        name
        for name in ("name", "redirect_uris", "grant_types", "scope", "jwks", "jwks_uri")
        if getattr(current, name) != getattr(updated, name)
    ]
    audit = ctx.audit("client.update", client_id, {"fields": changed})
    if not await ctx.store.update_client(updated, audit):
        raise InvalidToken(_NOT_YOURS)
    return updated


async def delete_registration(ctx: AdminContext, client_id: str, registration_token: str) -> None:
    """Delete a registered client (RFC 7592 section 2.3); audited as ``client.delete``."""
    await registered(ctx, client_id, registration_token)
    if not await ctx.store.delete_client(client_id, ctx.audit("client.delete", client_id)):
        raise InvalidToken(_NOT_YOURS)
