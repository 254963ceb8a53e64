"""User operations for administrators: create, list, show, change, disable, unlock, delete.

Passwords are hashed with argon2id through the context's hasher and checked against
NIST SP 800-63B section 3.1.1.2 (a minimum length in code points). Disabling or deleting an
account ends its access everywhere at once: its sessions end (back-channel clients are told)
and its refresh tokens are revoked. Each change is audited in the same transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from idp.admin.context import AdminContext, InvalidInput
from idp.config import MAX_PASSWORD_LENGTH
from idp.identifiers import new_identifier
from idp.oauth.refresh_tokens import revoke_user_refresh_tokens
from idp.sso.sessions import end_user_sessions
from idp.sso.throttle import clear_account
from idp.store.base import NotFound, UserRecord
from idp.store.usernames import USERNAME_RULE, username_allowed

MAX_USERNAME_LENGTH = 200


class InvalidUser(InvalidInput):
    """User input that cannot make a valid account."""


@dataclass(frozen=True)
class UserRef:
    """Which account an operation is about: by ``id``, or by ``username`` as people sign in.

    The admin API names the id; the commands take either (:meth:`either`). With both set,
    an account with that id is meant, or else the one with that login name.
    """

    id: str | None = None
    username: str | None = None

    @classmethod
    def either(cls, text: str) -> UserRef:
        """An id or a login name (matched in its canonical form), as an operator types it."""
        return cls(id=text, username=text)


class _Unchanged:
    """Marks a user field the update leaves as it is (None means: clear it)."""

    def __repr__(self) -> str:
        return "UNCHANGED"


UNCHANGED: Any = _Unchanged()


@dataclass(frozen=True)
class UserUpdate:
    """What an administrator may change on an account; UNCHANGED fields stay as they are."""

    email: str | None = UNCHANGED
    name: str | None = UNCHANGED
    disabled: bool = UNCHANGED
    password: str = UNCHANGED


def check_password_length(password: str, min_length: int) -> None:
    """Refuse a new password shorter than ``min_length`` (NIST SP 800-63B section 3.1.1.2).

    Lengths count Unicode code points, as that section asks; the upper bound only keeps
    hashing cheap to refuse.
    """
    if len(password) < min_length:
        raise InvalidUser(f"password too short: at least {min_length} characters are required")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise InvalidUser(f"password too long: at most {MAX_PASSWORD_LENGTH} characters")


def _check_email(email: str | None) -> None:
    if email is not None and (
        "@" not in email or any(c.isspace() for c in email) or len(email) > MAX_USERNAME_LENGTH
    ):
        raise InvalidUser(f"not an email address: {email!r}")


def _check_name(name: str | None) -> None:
    if name is not None and len(name) > MAX_USERNAME_LENGTH:
        raise InvalidUser(f"name must be at most {MAX_USERNAME_LENGTH} characters")


async def create_user(
    ctx: AdminContext,
    username: str,
    password: str,
    *,
    email: str | None = None,
    name: str | None = None,
) -> UserRecord:
    """Create a person's account with an argon2id password hash.

    The name must be visible throughout (see :mod:`idp.store.usernames`); the store refuses one
    whose canonical form another account has (Conflict).
    """
    username = username.strip()
    if not username_allowed(username):
        raise InvalidUser(USERNAME_RULE)
    check_password_length(password, ctx.settings.password_min_length)
    _check_email(email)
    _check_name(name)
    user = UserRecord(
        id=new_identifier(12),
        username=username,
        password_hash=await ctx.hasher(password),
        email=email,
        name=name,
        created_at=ctx.clock(),
    )
    await ctx.store.create_user(user, ctx.audit("user.create", user.id, {"username": username}))
    return user


async def list_users(ctx: AdminContext) -> list[UserRecord]:
    """Every user."""
    return await ctx.store.list_users()


async def get_user(ctx: AdminContext, ref: UserRef) -> UserRecord:
    """The account ``ref`` names (its id first, then its login name); raises NotFound."""
    user = await ctx.store.get_user(ref.id) if ref.id is not None else None
    if user is None and ref.username is not None:
        user = await ctx.store.get_user_by_username(ref.username.strip())
    if user is None:
        if ref.id is not None and ref.username is not None:
            raise NotFound(f"no user named {ref.username!r} or with that id")
        if ref.username is not None:
            raise NotFound(f"no user named {ref.username!r}")
        raise NotFound(f"no user with id {ref.id or ''!r}")
    return user


async def update_user(ctx: AdminContext, ref: UserRef, update: UserUpdate) -> UserRecord:
    """Change an account (a new password is hashed with argon2id); raises NotFound.

    The audit row (action ``user.update``) names the changed fields, never their values.
    Disabling the account also ends the user's access (``end_user_access``).
    """
    updated = await _apply(ctx, await get_user(ctx, ref), update)
    if update.disabled is True:
        await end_user_access(ctx, updated.id)
    return updated


async def disable_user(ctx: AdminContext, ref: UserRef) -> tuple[UserRecord, int]:
    """Disable an account and end its access; the user and how many sessions ended.

    A disabled user cannot sign in, and their sessions, codes and refresh tokens stop
    working at once. Disabling an account again ends whatever it has started since.
    """
    updated = await _apply(ctx, await get_user(ctx, ref), UserUpdate(disabled=True))
    return updated, await end_user_access(ctx, updated.id)


async def _apply(ctx: AdminContext, current: UserRecord, update: UserUpdate) -> UserRecord:
    """Validate and store an update of ``current``, audited in the same transaction."""
    updated = current
    if update.email is not UNCHANGED:
        _check_email(update.email)
        updated = replace(updated, email=update.email)
    if update.name is not UNCHANGED:
        _check_name(update.name)
        updated = replace(updated, name=update.name)
    if update.disabled is not UNCHANGED:
        updated = replace(updated, disabled=bool(update.disabled))
    changed = [
        f for f in ("email", "name", "disabled") if getattr(current, f) != getattr(updated, f)
    ]
    if update.password is not UNCHANGED:
        check_password_length(update.password, ctx.settings.password_min_length)
        updated = replace(updated, password_hash=await ctx.hasher(update.password))
        changed.append("password")
    audit = ctx.audit("user.update", current.id, {"fields": changed})
    if not await ctx.store.update_user(updated, audit):
        raise NotFound(f"no user with id {current.id!r}")
    return updated


async def end_user_access(ctx: AdminContext, user_id: str) -> int:
    """End a user's sessions (telling back-channel clients) and revoke all their refresh
    tokens, offline ones included; how many sessions ended.

    For an account that is disabled or about to be deleted.
    """
    ended = await end_user_sessions(ctx.store, ctx.clock, user_id, ctx.notifier)
    await revoke_user_refresh_tokens(ctx.store, user_id, clock=ctx.clock)
    return len(ended)


async def unlock_user(ctx: AdminContext, ref: UserRef) -> tuple[UserRecord, bool]:
    """Forget the account's failed logins from every address, ending any pause or lock.

    Says whether there were any; the ``user.unlock`` audit row is written only then.
    """
    user = await get_user(ctx, ref)
    audit = ctx.audit("user.unlock", user.id, {"username": user.username})
    return user, await clear_account(ctx.store, user.username, audit)


async def delete_user(ctx: AdminContext, ref: UserRef) -> UserRecord:
    """Delete an account after ending its access (back-channel clients are told); raises
    NotFound. The deleted user is returned."""
    user = await get_user(ctx, ref)
    await end_user_access(ctx, user.id)
    if not await ctx.store.delete_user(user.id, ctx.audit("user.delete", user.id)):
        raise NotFound(f"no user with id {user.id!r}")
    return user
