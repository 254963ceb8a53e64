"""Key-encryption keys for tests."""

from __future__ import annotations

from idp.config import decode_key_encryption_key


def key_of(text: str) -> bytes:
    return decode_key_encryption_key("test", text)
