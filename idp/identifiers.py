"""Random identifiers that an operator may type on the command line.

A base64url string starts with ``-`` one time in 64, and a command-line parser takes such an
argument for an option (``idp clients update -bO4...`` fails). The identifiers this server mints
(client ids, user ids, session ids, passkey ids) are therefore drawn again until they do not.
One character in 64 of one position is lost, so ``nbytes=16`` still carries about 127.9 bits.
"""

from __future__ import annotations

import secrets


def new_identifier(nbytes: int) -> str:
    """A random base64url identifier of ``nbytes`` random bytes that does not begin with ``-``."""
    while True:
        identifier = secrets.token_urlsafe(nbytes)
        if not identifier.startswith("-"):
            return identifier
