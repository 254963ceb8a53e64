"""Security events: sign-ins, throttling, token replay, consent and key failures, each one
audit row and one count.

A service that sees such an event hands a :class:`SecurityEvent` to the
:class:`SecurityEventSink` it was given; it never imports the metrics (they sit above the
services). :class:`AuditedEvents` is the sink an app builds: it writes the event's audit row
and tells the app's counter. A change the store audits in its own transaction (a consent
revoked, an account unlocked) passes its row to the store and only counts the event
(:meth:`SecurityEventSink.counted`).

Failures an outsider can repeat at will (a wrong password, a throttled attempt, a replayed
code) are ``repeatable``: they are counted in one row per action, outcome, address block
(the IPv4 address or the IPv6 /64, as the login throttle counts them), client and minute
(``Store.count_audit``), so a flood from one address adds at most one row a minute for each
kind of event however many attempts it makes. No event carries a password, code, token or
secret: only who, which client, from where, and a few plain words in ``detail``.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from idp.clock import Clock
from idp.store.base import AuditEntry, AuditStore, StoreUnavailable

log = logging.getLogger("idp.security")

ANONYMOUS = "anonymous"
"""The actor of an event whose person is not known (an unknown username, a bad token)."""

BUCKET_SECONDS = 60
"""The length of a counting bucket: repeatable failures add one row per bucket at most."""

CountEvent = Callable[[str, str], None]
"""Counts one event by action and outcome (the app's Prometheus counter)."""


def address_block(ip: str) -> str:
    """The address as the login throttle counts it: the IPv4 address, or the IPv6 /64 around
    it; an unparseable one as ``other:`` and a short hash."""
    try:
        address = ipaddress.ip_address(ip.strip())
    except ValueError:
        return "other:" + hashlib.sha256(ip.encode()).hexdigest()[:32]
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


@dataclass(frozen=True)
class SecurityEvent:
    """One security event: what happened, to whom, through which client, from where.

    ``subject`` is the user's ``sub`` when the person is known (the row's target and
    subject); ``client`` the client_id involved; ``address`` the client address as the app
    determines it. ``repeatable`` events are counted per bucket (see the module).
    """

    action: str
    outcome: str
    actor: str = ANONYMOUS
    subject: str | None = None
    client: str | None = None
    address: str | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)
    repeatable: bool = False
    target: str | None = None
    """The row's target when it is not the subject (a key id, a client_id)."""

    def audit_entry(self, at: float) -> AuditEntry:
        """The event's audit row at ``at``: client and address go into ``detail``."""
        detail: dict[str, Any] = {}
        if self.client is not None:
            detail["client"] = self.client
        if self.address is not None:
            detail["address"] = self.address
        detail.update(self.detail)
        target = self.target if self.target is not None else self.subject or ""
        return AuditEntry(
            at, self.actor, self.action, target, self.outcome, detail, subject=self.subject
        )

    def bucket(self, at: float) -> str:
        """The counting bucket of a repeatable event: action, outcome, address block,
        client and minute."""
        source = address_block(self.address) if self.address else "-"
        minute = int(at // BUCKET_SECONDS)
        return f"{self.action}:{self.outcome}:{source}:{self.client or '-'}:{minute}"


class SecurityEventSink(Protocol):
    """Where services send their security events."""

    async def record(self, event: SecurityEvent) -> None:
        """Write the event's audit row (counted per bucket when repeatable) and count it."""

    def counted(self, event: SecurityEvent) -> None:
        """Count an event whose audit row the store wrote with the change itself."""


def _no_counter(action: str, outcome: str) -> None:
    """Counting nowhere: a process without metrics (the CLI)."""


class AuditedEvents:
    """The sink of an app or a command: audit rows in ``store``, counts through ``count``.

    A store outage while writing the row is logged, not raised: the event's own answer (a
    refused sign-in, an error to the client) goes out either way, and the count is kept.
    """

    def __init__(self, store: AuditStore, clock: Clock, count: CountEvent = _no_counter) -> None:
        self._store = store
        self._clock = clock
        self._count = count

    async def record(self, event: SecurityEvent) -> None:
        self._count(event.action, event.outcome)
        at = self._clock()
        entry = event.audit_entry(at)
        try:
            if event.repeatable:
                await self._store.count_audit(entry, event.bucket(at))
            else:
                await self._store.record_audit(entry)
        except StoreUnavailable as exc:
            log.warning("could not audit %s (%s): %s", event.action, event.outcome, exc)

    def counted(self, event: SecurityEvent) -> None:
        self._count(event.action, event.outcome)


async def record_security_event(
    store: AuditStore, clock: Clock, event: SecurityEvent, count: CountEvent = _no_counter
) -> None:
    """Record one event without a long-lived sink (an admin command): its row, its count."""
    await AuditedEvents(store, clock, count).record(event)
