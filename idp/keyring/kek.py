"""The key-encryption key and the store it protects: created once, checked before writing.

Every private signing key in a store is sealed under one key-encryption key. A process
holding another key must never add keys the others cannot open (they would fail only when
such a key is promoted, hours later), so before anything is written the configured key must
open every sealed key already in the ring; and a new key is generated only for a store that
holds no sealed key yet.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from idp.config import (
    LEGACY_KEY_FILE,
    ConfigError,
    Settings,
    create_key_file,
    read_key_file,
)
from idp.keyring.material import KeyMaterialError, opens
from idp.store.base import KeyRecord, Store


class KeyEncryptionKeyMismatch(KeyMaterialError):
    """The configured key-encryption key does not open keys already in the ring."""


def check_opens(keys: Sequence[KeyRecord], key_encryption_key: bytes, source: str) -> None:
    """Raise KeyEncryptionKeyMismatch unless the key opens every sealed key in ``keys``.

    Revoked and expired keys have no private part left and need no opening.
    """
    sealed = [k for k in keys if k.private_key_sealed]
    refused = [k for k in sealed if not opens(k, key_encryption_key)]
    if refused:
        raise KeyEncryptionKeyMismatch(
            f"the key-encryption key from {source} does not open {len(refused)} of the "
            f"{len(sealed)} sealed signing keys in the store (kid {refused[0].kid}); configure "
            "the key they were sealed under; nothing was written"
        )


async def sealed_keys(store: Store) -> list[KeyRecord]:
    """The store's keys that still hold a sealed private part (none before any migration)."""
    status = await store.schema_status()
    if not status.applied:
        return []
    return [k for k in await store.list_keys() if k.private_key_sealed]


async def check_store(store: Store, settings: Settings) -> None:
    """Refuse (KeyEncryptionKeyMismatch) when the configured key does not open the ring."""
    check_opens(
        await sealed_keys(store), settings.key_encryption_key, settings.key_encryption_key_source
    )


async def provide_key_file(store: Store, settings: Settings) -> Settings:
    """The settings with their key: a missing key file is generated only for an empty ring.

    A store that already holds sealed keys never gets a new key: its key file was lost or
    moved, and a new key would seal new signing keys that no other process can open.
    """
    path = settings.key_encryption_key_file
    if not settings.key_encryption_key_missing or path is None:
        return settings
    held = await sealed_keys(store)
    if held:
        raise ConfigError(_lost_key_file(path, store.description, held))
    create_key_file(path)
    return replace(settings, key_encryption_key=read_key_file("IDP_KEY_ENCRYPTION_KEY", path))


def _lost_key_file(path: Path, store: str, held: Sequence[KeyRecord]) -> str:
    """One line saying what to do when a store's keys are sealed but its key file is gone."""
    found = f"IDP_KEY_ENCRYPTION_KEY: not set and {path} does not exist, but {store} holds "
    found += f"{len(held)} sealed signing keys"
    legacy = LEGACY_KEY_FILE.resolve()
    if legacy.is_file():
        try:
            legacy_key = read_key_file("IDP_KEY_ENCRYPTION_KEY", legacy)
        except ConfigError:
            legacy_key = b""
        if legacy_key and all(opens(k, legacy_key) for k in held):
            return (
                f"{found}; earlier versions kept the key in {legacy}, which opens them: "
                f"move it (mv {legacy} {path})"
            )
    return (
        f"{found}; put the key they were sealed under there (mode 0600) or set "
        "IDP_KEY_ENCRYPTION_KEY; no new key is generated for a store that has keys"
    )
