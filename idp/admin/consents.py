"""Consent operations for administrators: list the consents users have given clients, and
revoke one.

A consent is what a user approved on the consent page for a client registered with
``require_consent`` (OpenID Connect Core 1.0 section 3.1.2.4). Revoking it is the store's
``revoke_consent``, the same step the account page takes for the person themselves: the
consent goes, and every refresh token of the user and client is revoked with its grant
(so the access tokens it issued are refused too), in one transaction with the
``consent.revoke`` audit row.
"""

from __future__ import annotations

from dataclasses import dataclass

from idp.admin.clients import get_client
from idp.admin.context import AdminContext
from idp.admin.users import UserRef, get_user
from idp.store.base import ConsentRecord, NotFound, UserRecord


@dataclass(frozen=True)
class ConsentView:
    """A consent with the names administrators know the user and the client by."""

    consent: ConsentRecord
    username: str
    client_name: str


async def list_consents(
    ctx: AdminContext, user: UserRef | None = None, client_id: str | None = None
) -> list[ConsentView]:
    """Every consent, or those of one user, one client, or both; oldest grant first.

    Raises NotFound when the user or the client named does not exist.
    """
    found = await get_user(ctx, user) if user is not None else None
    client = await get_client(ctx, client_id) if client_id is not None else None
    consents = await ctx.store.find_consents(
        found.id if found else None, client.client_id if client else None
    )
    usernames = (
        {found.id: found.username}
        if found
        else {u.id: u.username for u in await ctx.store.list_users()}
    )
    names = (
        {client.client_id: client.name}
        if client
        else {c.client_id: c.name for c in await ctx.store.list_clients()}
    )
    return [
        ConsentView(c, usernames.get(c.user_id, c.user_id), names.get(c.client_id, c.client_id))
        for c in consents
    ]


async def revoke_consent(ctx: AdminContext, user: UserRef, client_id: str) -> UserRecord:
    """End the user's consent to the client and every refresh token it backed; the user.

    Audited as ``consent.revoke`` (target the client, as when the person does it on the
    account page; details: the user's id and name). Raises NotFound for an unknown user or
    client, or when the user has no consent for the client (then nothing changes).
    """
    found = await get_user(ctx, user)
    client = await get_client(ctx, client_id)
    missing = NotFound(f"user {found.username!r} has no consent for client {client_id!r}")
    if not await ctx.store.find_consents(found.id, client.client_id):
        raise missing
    detail = {"user_id": found.id, "username": found.username}
    audit = ctx.audit("consent.revoke", client.client_id, detail)
    if not await ctx.store.revoke_consent(found.id, client.client_id, ctx.clock(), audit):
        raise missing
    return found
