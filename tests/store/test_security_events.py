"""Security events in the store on both backends: a repeatable failure is counted in one row
per address block, client and minute; other events are a row each; the trail filters by
action."""

from __future__ import annotations

import pytest

from idp.store.base import AuditEntry, Store
from idp.store.security_events import AuditedEvents, SecurityEvent, address_block
from tests.support.clocks import FakeClock

pytestmark = pytest.mark.anyio


def failure(address: str, client: str = "web") -> SecurityEvent:
    return SecurityEvent(
        "signin.password", "failure", "alice", "u1", client, address, {"purpose": "x"}, True
    )


async def test_repeatable_failures_share_a_row_per_block_client_and_minute(store: Store) -> None:
    clock = FakeClock()
    seen: list[tuple[str, str]] = []
    events = AuditedEvents(store, clock, lambda action, outcome: seen.append((action, outcome)))
    for _ in range(25):
        await events.record(failure("192.0.2.1"))
    # One IPv6 /64 is one block, as the login throttle counts it.
    await events.record(failure("2001:db8::1"))
    await events.record(failure("2001:db8::ffff:2"))
    await events.record(failure("192.0.2.1", client="other"))
    clock.advance(60)
    await events.record(failure("192.0.2.1"))
    await events.record(
        SecurityEvent("signin.password", "success", "alice", "u1", "web", "192.0.2.1")
    )
    await events.record(
        SecurityEvent("signin.password", "success", "alice", "u1", "web", "192.0.2.1")
    )

    entries = await store.list_audit()
    assert [(e.outcome, e.count, e.detail.get("address")) for e in entries] == [
        ("failure", 25, "192.0.2.1"),
        ("failure", 2, "2001:db8::1"),
        ("failure", 1, "192.0.2.1"),
        ("failure", 1, "192.0.2.1"),
        ("success", 1, "192.0.2.1"),
        ("success", 1, "192.0.2.1"),
    ]
    first = entries[0]
    assert (first.actor, first.target, first.subject) == ("alice", "u1", "u1")
    assert first.detail == {"client": "web", "address": "192.0.2.1", "purpose": "x"}
    assert len(seen) == 31 and seen.count(("signin.password", "failure")) == 29
    assert address_block("2001:db8::1") == address_block("2001:db8::ffff:2") == "2001:db8::/64"


async def test_the_trail_filters_by_action_or_family(store: Store) -> None:
    for n, action in enumerate(["signin.password", "signin.throttled", "consent.grant", "signin"]):
        await store.record_audit(AuditEntry(100.0 + n, "a", action, "t"))
    assert [e.action for e in await store.list_audit(action="consent.grant")] == ["consent.grant"]
    assert [e.action for e in await store.list_audit(action="signin.*")] == [
        "signin.password",
        "signin.throttled",
    ]
    assert await store.list_audit(action="signin.pass") == []
    newest = await store.list_audit(action="signin.*", limit=1)
    assert [e.action for e in newest] == ["signin.throttled"]
    assert newest[0].id is not None
    older = await store.list_audit(action="signin.*", before=newest[0].id)
    assert [e.action for e in older] == ["signin.password"]
