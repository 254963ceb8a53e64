"""Who performs an admin operation, on which store, with what: one object both adapters build.

The CLI builds it as ``cli:<login name>``; the admin API as ``admin:<client_id>`` with the
token's ``sub``. Every operation in :mod:`idp.admin` takes it first, so an operation reads the
same whichever adapter called it, and its audit rows name the same actor either way.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from idp.clock import Clock, system_clock
from idp.config import Settings
from idp.keyring.ring import KeyRingService
from idp.sso.backchannel import BackchannelNotifier
from idp.sso.passwords import HashPassword, hash_password_async
from idp.store.base import SYSTEM, Actor, AuditEntry, Store


class InvalidInput(ValueError):
    """Administrator input no operation can act on (the message says why)."""


@dataclass(frozen=True)
class AdminContext:
    """The store, the settings, and who is acting: what every admin operation needs.

    ``hasher`` is a server's PasswordService ``hash`` (so hashing shares the logins' bound);
    ``notifier`` tells back-channel clients of ended sessions; ``ring`` is the answering
    process's key ring, refreshed after a key change so it signs with the new keys at once.
    """

    store: Store
    settings: Settings
    actor: str = SYSTEM
    subject: str | None = None
    clock: Clock = system_clock
    hasher: HashPassword = hash_password_async
    notifier: BackchannelNotifier | None = None
    ring: KeyRingService | None = None

    def audit(
        self, action: str, target: str, detail: Mapping[str, Any] | None = None
    ) -> AuditEntry:
        """An audit row for a change made now by this actor (written with the change)."""
        return AuditEntry(
            self.clock(),
            self.actor,
            action,
            target,
            detail=dict(detail or {}),
            subject=self.subject,
        )

    def acting(self) -> Actor:
        """This actor, now, as the key ring's audit rows name it."""
        return Actor(self.actor, self.clock(), self.subject)

    async def keys_changed(self) -> None:
        """Let the answering process's ring pick up a key change before it answers."""
        if self.ring is not None:
            await self.ring.refresh_if_changed()
