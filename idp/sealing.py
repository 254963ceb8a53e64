"""Sealed form state and CSRF tokens, keyed by a secret derived from the key-encryption key.

A pending authorization request travels through the login and consent forms sealed with
an HMAC (so every replica can open it, and nobody can alter it), and each form carries a
CSRF token derived from the sealed request and a per-browser random cookie value.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from typing import Any


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class FormSealer:
    """Seals documents for a purpose and a lifetime, and derives CSRF tokens from them."""

    def __init__(self, key_encryption_key: bytes) -> None:
        self._key = hmac.new(key_encryption_key, b"idp form sealing v1", hashlib.sha256).digest()

    def _mac(self, *parts: str) -> bytes:
        return hmac.new(self._key, "\x00".join(parts).encode(), hashlib.sha256).digest()

    def seal(self, purpose: str, document: dict[str, Any], expires_at: float) -> str:
        """An opaque string holding the document until ``expires_at``, only for ``purpose``."""
        payload = _b64(json.dumps({"exp": expires_at, "doc": document}).encode())
        return f"{payload}.{_b64(self._mac('seal', purpose, payload))}"

    def unseal(self, purpose: str, sealed: str, now: float) -> dict[str, Any] | None:
        """The sealed document, or None if it was altered, is for another purpose or expired."""
        payload, _, mac = sealed.partition(".")
        try:
            given = _unb64(mac)
            if not hmac.compare_digest(given, self._mac("seal", purpose, payload)):
                return None
            content = json.loads(_unb64(payload))
        except (binascii.Error, ValueError, UnicodeDecodeError):
            return None
        if not isinstance(content, dict) or not isinstance(content.get("exp"), int | float):
            return None
        if now >= content["exp"] or not isinstance(content.get("doc"), dict):
            return None
        document: dict[str, Any] = content["doc"]
        return document

    def csrf_token(self, browser: str, sealed: str) -> str:
        """The CSRF token for a form showing ``sealed`` to the browser holding ``browser``."""
        return _b64(self._mac("csrf", browser, sealed))

    def csrf_matches(self, browser: str | None, sealed: str, token: str | None) -> bool:
        """Whether a submitted token is the one issued to this browser for this form."""
        if not browser or not token:
            return False
        return hmac.compare_digest(token.encode(), self.csrf_token(browser, sealed).encode())
