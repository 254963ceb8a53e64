"""``idp users unlock`` as a subprocess on both stores: a locked account can sign in again."""

from __future__ import annotations

from idp.config import load_settings
from idp.sso.throttle import record_login_success, reserve_login_attempt
from idp.store.base import Store
from tests.support.cli import Idp
from tests.support.clocks import FakeClock
from tests.support.server import with_store

WHO = {"username": "ada", "ip": "192.0.2.1"}
PASSWORD = "first password\n"


def test_unlock_forgets_failures_of_an_existing_user(migrated: Idp, database_url: str) -> None:
    migrated("users", "create", "--username", "Ada", "--password-stdin", stdin=PASSWORD).ok()
    settings = load_settings(migrated.env)
    clock = FakeClock()

    async def lock(store: Store) -> bool:
        for _ in range(2 * settings.login_max_failures):
            assert (await reserve_login_attempt(store, settings, clock, **WHO)).allowed
            clock.advance(60)  # past each pause, well inside the window
        return (await reserve_login_attempt(store, settings, clock, **WHO)).allowed

    async def signs_in(store: Store) -> bool:
        allowed = (await reserve_login_attempt(store, settings, clock, **WHO)).allowed
        if allowed:
            await record_login_success(store, settings, clock, **WHO)
        return allowed

    assert with_store(database_url, lock) is False
    document = migrated("users", "unlock", "ada", "--json").json()
    assert document["username"] == "Ada"
    assert document["unlocked"] is True and document["cleared"] is True
    assert with_store(database_url, signs_in) is True

    again = migrated("users", "unlock", "Ada").ok()
    assert again.stdout == "user Ada had no failed logins to forget\n"

    async def unlocks(store: Store) -> list[tuple[str, str, str]]:
        return [
            (e.target, e.actor, e.detail["username"])
            for e in await store.list_audit()
            if e.action == "user.unlock"
        ]

    # One audit row: the second unlock had nothing to forget and changed nothing.
    [(target, actor, username)] = with_store(database_url, unlocks)
    assert target == document["id"] and actor.startswith("cli") and username == "Ada"

    migrated("users", "unlock", "nobody").fails(1, "no user named 'nobody'")
    migrated("users", "unlock", "-x", "--json").fails(1, "no user named '-x'")
    migrated("users", "unlock").fails(2, "username")
