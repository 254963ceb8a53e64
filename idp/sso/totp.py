"""Time-based one-time passwords (RFC 6238 over RFC 4226): pure functions, no storage.

The parameters are the ones every authenticator app takes without asking: HMAC-SHA-1,
30-second steps from the Unix epoch, 6 digits, and a 160-bit secret (RFC 4226 section 4,
R6 asks for at least 128). A code is checked against the current step and one step either
side (RFC 6238 section 5.2 on clock drift and network delay); which step matched is
returned, so the caller can accept each step once.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import struct
from urllib.parse import quote, urlencode

PERIOD = 30
DIGITS = 6
ALGORITHM = "SHA1"
SECRET_BYTES = 20
WINDOW = 1


def new_secret() -> bytes:
    """A fresh random shared secret of 160 bits (RFC 4226 section 4, R6)."""
    return secrets.token_bytes(SECRET_BYTES)


def base32_secret(secret: bytes) -> str:
    """The secret as people and apps type it: base32 without padding (Key Uri Format)."""
    return base64.b32encode(secret).decode("ascii").rstrip("=")


def time_step(now: float) -> int:
    """The time step T of a moment: floor((now - T0) / X) with T0 = 0, X = 30 (RFC 6238 4.2)."""
    return int(now // PERIOD)


def code_at(secret: bytes, step: int) -> str:
    """The HOTP value of ``step`` (RFC 4226 section 5.3: dynamic truncation, 6 digits)."""
    digest = hmac.new(secret, struct.pack(">Q", step), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    value = struct.unpack(">I", digest[offset : offset + 4])[0] & 0x7FFFFFFF
    return str(value % 10**DIGITS).zfill(DIGITS)


def normalized(code: str) -> str | None:
    """The typed code without spaces, or None when it cannot be a 6-digit code."""
    digits = "".join(code.split())
    if len(digits) != DIGITS or not digits.isascii() or not digits.isdigit():
        return None
    return digits


def matching_step(secret: bytes, code: str, now: float, window: int = WINDOW) -> int | None:
    """The time step within ``window`` steps of ``now`` whose code is ``code``, else None.

    Every step of the window is compared, each in constant time, so the answer time does
    not tell which step came close (RFC 6238 section 5.2).
    """
    typed = normalized(code)
    if typed is None:
        return None
    current = time_step(now)
    found = None
    for step in range(current - window, current + window + 1):
        if hmac.compare_digest(code_at(secret, step), typed):
            found = step
    return found


def provisioning_uri(secret: bytes, account: str, issuer: str) -> str:
    """The ``otpauth://totp/`` URI an authenticator app reads from a QR code (Key Uri Format:
    label ``issuer:account``, with secret, issuer, algorithm, digits and period)."""
    label = quote(f"{issuer}:{account}", safe="@:")
    query = urlencode(
        {
            "secret": base32_secret(secret),
            "issuer": issuer,
            "algorithm": ALGORITHM,
            "digits": DIGITS,
            "period": PERIOD,
        },
        quote_via=quote,
    )
    return f"otpauth://totp/{label}?{query}"
