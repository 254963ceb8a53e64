"""Second-factor operations for administrators: status, reset, and the per-user requirement.

A reset forgets the user's TOTP credential, recovery codes and passkeys (someone who lost
their device signs in with the password and sets up a new one; a passkey is a second factor
too, so one left behind would keep asking for a lost device); requiring a second factor makes
every sign-in of the user ask for one, and one without a factor set up is told to set one
up first (:mod:`idp.sso.second_factor`). Each change is audited in its transaction.
"""

from __future__ import annotations

from dataclasses import replace

from webauthn.helpers import bytes_to_base64url

from idp.admin.context import AdminContext
from idp.admin.users import UserRef, get_user
from idp.sso.factors import FactorStatus, factor_status, remove_second_factors
from idp.store.base import NotFound, UserRecord


async def mfa_status(ctx: AdminContext, ref: UserRef) -> tuple[UserRecord, FactorStatus]:
    """The user's second factors, unused recovery codes, and whether one is required."""
    user = await get_user(ctx, ref)
    return user, await factor_status(ctx.store, user)


async def reset_mfa(ctx: AdminContext, ref: UserRef) -> tuple[UserRecord, FactorStatus, bool]:
    """Forget the user's TOTP credential, recovery codes and passkeys; whether there were
    any (``user.mfa_reset`` is audited only for the first two, ``passkey.remove`` for each
    passkey)."""
    user = await get_user(ctx, ref)
    audit = ctx.audit("user.mfa_reset", user.id, {"username": user.username})
    removed = await remove_second_factors(ctx.store, user.id, audit)
    for passkey in await ctx.store.list_passkeys(user.id):
        detail = {"name": passkey.name, "credential": bytes_to_base64url(passkey.credential_id)}
        gone = ctx.audit("passkey.remove", user.id, detail)
        removed = await ctx.store.delete_passkey(user.id, passkey.credential_id, gone) or removed
    return user, await factor_status(ctx.store, user), removed


async def require_mfa(
    ctx: AdminContext, ref: UserRef, required: bool = True
) -> tuple[UserRecord, FactorStatus]:
    """Require (or stop requiring) a second factor at every sign-in of the user (audited
    ``user.require_mfa`` with the new value)."""
    user = await get_user(ctx, ref)
    updated = replace(user, mfa_required=required)
    audit = ctx.audit("user.require_mfa", user.id, {"required": required})
    if not await ctx.store.update_user(updated, audit):
        raise NotFound(f"no user with id {user.id!r}")
    return updated, await factor_status(ctx.store, updated)
