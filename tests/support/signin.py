"""Helpers for calling the sign-in services directly: their services over a real store.

:func:`signin_services` builds what :class:`idp.sso.outcomes.SignInServices` asks for
from the real parts (key ring loaded from the store, password hashing, back-channel
notifier) on a clock tests move.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from idp.config import Settings
from idp.keyring.changes import ensure_key_rings
from idp.keyring.ring import KeyRingService
from idp.oauth.client_keys import ClientKeySets
from idp.sso.backchannel import BackchannelNotifier
from idp.sso.passwords import PasswordService
from idp.store.base import Store
from idp.store.security_events import AuditedEvents
from tests.support.sso import MovableClock


@dataclass
class SignInParts:
    """The long-lived services the sign-in services take, as an app holds them."""

    settings: Settings
    store: Store
    clock: MovableClock
    keys: KeyRingService
    passwords: PasswordService
    notifier: BackchannelNotifier
    events: AuditedEvents
    client_keys: ClientKeySets


@asynccontextmanager
async def signin_services(settings: Settings, store: Store) -> AsyncIterator[SignInParts]:
    """Services over ``store`` with a key ring in it, on a frozen clock; closed afterwards."""
    clock = MovableClock()
    clock.freeze()
    await ensure_key_rings(store, settings, clock)
    keys = KeyRingService(store, settings.key_encryption_key)
    await keys.load()
    notifier = BackchannelNotifier(settings, keys, clock)
    try:
        yield SignInParts(
            settings,
            store,
            clock,
            keys,
            PasswordService(settings.password_hash_concurrency),
            notifier,
            AuditedEvents(store, clock),
            ClientKeySets(clock),
        )
    finally:
        await notifier.aclose()
