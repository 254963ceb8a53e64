"""Client operations for administrators: register, list, show, change and delete clients,
and rotate a client's secret.

The registration rules (RFC 7591 metadata, redirect and back-channel URI rules) are those of
:mod:`idp.oauth.registration`; each change is audited in the same transaction.
"""

from __future__ import annotations

from dataclasses import replace

from idp.admin.context import AdminContext, InvalidInput
from idp.oauth.client_auth import hash_client_secret, new_client_secret
from idp.oauth.client_secret_jwt import (
    CLIENT_SECRET_JWT,
    resealed_client_secret,
    seal_client_secret,
)
from idp.oauth.registration import (
    ClientRequest,
    ClientUpdate,
    admin_client_request,
    apply_client_update,
    build_client,
)
from idp.oauth.uris import backchannel_rules
from idp.store.base import ClientRecord, NotFound

_UPDATE_FIELDS = (
    "name",
    "redirect_uris",
    "post_logout_redirect_uris",
    "grant_types",
    "scope",
    "audiences",
    "backchannel_logout_uri",
    "token_exchange_subject_clients",
)


MAX_SECRET_OVERLAP = 30 * 86400
"""The longest a replaced secret may stay valid after a rotation: 30 days."""


def _missing(client_id: str) -> NotFound:
    return NotFound(f"no client with client_id {client_id!r}")


async def create_client(
    ctx: AdminContext, request: ClientRequest, *, admin: bool = False
) -> tuple[ClientRecord, str | None]:
    """Register a client; the secret (confidential clients only) is returned once, never stored
    (a client_secret_jwt client's is kept sealed under the key-encryption key, to check its
    assertions' HMAC).

    ``admin`` makes it an admin API client (scope ``idp:admin``, audience ``<issuer>/admin``).
    """
    if admin:
        request = admin_client_request(request, ctx.settings.issuer)
    record, secret = build_client(request, ctx.clock(), backchannel_rules(ctx.settings))
    if secret is not None:
        record = replace(record, secret_sealed=_sealed(ctx, record, secret))
    audit = ctx.audit("client.create", record.client_id, {"name": record.name})
    await ctx.store.create_client(record, audit)
    return record, secret


def _sealed(ctx: AdminContext, client: ClientRecord, secret: str) -> bytes | None:
    """The secret sealed for a client_secret_jwt client (RFC 7523 section 2.2); None for others."""
    if client.token_endpoint_auth_method != CLIENT_SECRET_JWT:
        return None
    return seal_client_secret(secret, client.client_id, ctx.settings.key_encryption_key)


async def list_clients(ctx: AdminContext) -> list[ClientRecord]:
    """Every client."""
    return await ctx.store.list_clients()


async def get_client(ctx: AdminContext, client_id: str) -> ClientRecord:
    """The client with this id; raises NotFound when there is none."""
    client = await ctx.store.get_client(client_id)
    if client is None:
        raise _missing(client_id)
    return client


async def update_client(ctx: AdminContext, client_id: str, update: ClientUpdate) -> ClientRecord:
    """Change a client's metadata with the registration rules; raises NotFound or Conflict.

    The audit row (action ``client.update``) names the fields whose value changed.
    """
    current = await get_client(ctx, client_id)
    updated = apply_client_update(current, update, backchannel_rules(ctx.settings))
    changed = [f for f in _UPDATE_FIELDS if getattr(current, f) != getattr(updated, f)]
    if not await ctx.store.update_client(
        updated, ctx.audit("client.update", client_id, {"fields": changed})
    ):
        raise _missing(client_id)
    return updated


async def delete_client(ctx: AdminContext, client_id: str) -> None:
    """Delete a client by id (its tokens still verify until they expire); raises NotFound."""
    if not await ctx.store.delete_client(client_id, ctx.audit("client.delete", client_id)):
        raise _missing(client_id)


async def rotate_client_secret(
    ctx: AdminContext, client_id: str, keep_old: int = 0
) -> tuple[ClientRecord, str]:
    """Give a confidential client a new secret, returned once (only its SHA-256 is kept).

    With ``keep_old`` seconds (at most ``MAX_SECRET_OVERLAP``) the secret replaced stays
    valid that long beside the new one, so the client's deployments can move to the new one
    without downtime; with 0 it stops working at once. A secret kept from an earlier rotation
    is dropped: only the one just replaced may overlap. Audited as ``client.rotate_secret``
    (details: the overlap in seconds, never a secret). Raises NotFound or InvalidInput.

    A client_secret_jwt client's new secret is sealed in place of the old one; such a client
    cannot keep the old secret (InvalidInput): only the current one keys its assertions.
    """
    if not 0 <= keep_old <= MAX_SECRET_OVERLAP:
        raise InvalidInput(f"the old secret may be kept for 0 to {MAX_SECRET_OVERLAP} seconds")
    current = await get_client(ctx, client_id)
    if current.is_public or current.secret_hash is None:
        raise InvalidInput(f"client {client_id!r} is public: it has no secret to rotate")
    if keep_old and current.token_endpoint_auth_method == CLIENT_SECRET_JWT:
        raise InvalidInput(
            f"client {client_id!r} uses client_secret_jwt: its old secret cannot be kept "
            "(only the current one signs its assertions); rotate without --keep-old"
        )
    secret = new_client_secret()
    keep = keep_old > 0
    rotated = replace(
        current,
        secret_hash=hash_client_secret(secret),
        secret_sealed=_sealed(ctx, current, secret),
        previous_secret_hash=current.secret_hash if keep else None,
        previous_secret_expires_at=ctx.clock() + keep_old if keep else None,
    )
    audit = ctx.audit("client.rotate_secret", client_id, {"keep_old_seconds": keep_old})
    if not await ctx.store.update_client(rotated, audit):
        raise _missing(client_id)
    return rotated, secret


async def reseal_client_secrets(ctx: AdminContext, old_key: bytes, new_key: bytes) -> int:
    """Seal the secrets of client_secret_jwt clients anew under ``new_key``; how many changed.

    A secret is resealed only when ``old_key`` opens it, so an interrupted ``idp keys rewrap``
    can be run again. Each change is audited as ``client.rewrap`` (never a secret).
    """
    changed = 0
    for client in await ctx.store.list_clients():
        sealed = resealed_client_secret(client, old_key, new_key)
        if sealed is None:
            continue
        audit = ctx.audit("client.rewrap", client.client_id)
        if await ctx.store.update_client(replace(client, secret_sealed=sealed), audit):
            changed += 1
    return changed
