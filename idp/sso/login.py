"""Checking a person's username and password (the one place a login succeeds or fails).

Called by the sign-in service (:mod:`idp.sso.signin`); it reads users from the store and
hashes through :mod:`idp.sso.passwords`.
"""

from __future__ import annotations

import logging
import math

from idp.sso.passwords import PasswordService, needs_rehash
from idp.sso.text import N_, Nn_
from idp.store.base import Store, UserRecord

log = logging.getLogger("idp.sso.login")

MAX_USERNAME_LENGTH = 200
MAX_PASSWORD_LENGTH = 1024
LOGIN_FAILED = N_("Incorrect username or password.")


def throttled_message(wait: float) -> str:
    """What the login page says while failed attempts pause or lock the account or address."""
    seconds = max(1, math.ceil(wait))
    if seconds < 120:
        return Nn_(
            "Too many failed sign-ins. Try again in %(count)d second.",
            "Too many failed sign-ins. Try again in %(count)d seconds.",
            seconds,
        )
    minutes = math.ceil(seconds / 60)
    return Nn_(
        "Too many failed sign-ins. Try again in %(count)d minute.",
        "Too many failed sign-ins. Try again in %(count)d minutes.",
        minutes,
    )


async def check_password(
    store: Store, passwords: PasswordService, username: str, password: str
) -> UserRecord | None:
    """The user the credentials belong to, or None, taking the same time either way.

    An unknown user is checked against a dummy hash, so the answer time does not reveal
    which usernames exist; a disabled user fails like a wrong password. A hash made with
    older parameters is replaced on success (RFC 9106 section 4 parameters move on).
    """
    username = username.strip()
    if len(username) > MAX_USERNAME_LENGTH or len(password) > MAX_PASSWORD_LENGTH:
        await passwords.verify(None, "")
        return None
    user = await store.get_user_by_username(username) if username else None
    matches = await passwords.verify(user.password_hash if user else None, password)
    if user is None or not matches or user.disabled:
        return None
    if needs_rehash(user.password_hash):
        await store.set_user_password_hash(user.id, await passwords.hash(password))
        log.info("password hash of user %s upgraded to the current parameters", user.id)
    return user
