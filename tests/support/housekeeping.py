"""Rows for housekeeping tests: refresh tokens, login counters, revoked access tokens and
revoked grants that expire together."""

from __future__ import annotations

from idp.config import Settings
from idp.oauth.refresh_tokens import find_refresh_token, issue_refresh_token, revoke_refresh_family
from idp.sso.throttle import reserve_login_attempt
from idp.store.base import Store, UserRecord
from tests.support.clocks import FakeClock
from tests.support.records import a_client


async def seed_expiring_rows(
    store: Store, settings: Settings, clock: FakeClock, n: int
) -> list[str]:
    """``n`` refresh tokens, ``n`` login counters, ``n`` revoked access tokens and ``n``
    revoked grants at ``clock.now``.

    The revoked access tokens expire when the refresh tokens do; each grant is ended (its
    refresh token revoked) at once, so its row goes an access-token lifetime later.
    """
    tokens = []
    for i in range(n):
        tokens.append(
            await issue_refresh_token(
                store,
                settings,
                clock,
                client_id="c1",
                user_id="u1",
                scope=["read"],
                sid=None,
                auth_time=clock.now,
                offline=False,
                family_id=f"f{clock.now}-{i}",
            )
        )
        await reserve_login_attempt(
            store,
            settings,
            clock,
            username=f"u{clock.now}-{i}",
            ip=f"2001:db8:{int(clock.now) % 65536:x}:{i}::1",
        )
        await store.revoke_access_token(
            f"j{clock.now}-{i}", "c1", clock.now, clock.now + settings.refresh_token_ttl
        )
        await revoke_refresh_family(store, f"f{clock.now}-{i}", clock=clock)
    return tokens


async def add_client_and_user(store: Store) -> None:
    """Client ``c1`` and user ``u1``, whom ``seed_expiring_rows`` issues tokens to."""
    await store.create_client(a_client())
    await store.create_user(UserRecord("u1", "ada", "$argon2id$x", None, None, 1.0))


async def count_refresh_tokens(store: Store, tokens: list[str]) -> int:
    """How many of ``tokens`` the store still holds."""
    return sum([await find_refresh_token(store, t) is not None for t in tokens])
