"""Scope values (RFC 6749 section 3.3)."""

from __future__ import annotations

import re
from collections.abc import Sequence

from idp.oauth.errors import InvalidScope

# scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
_SCOPE_TOKEN = re.compile(r"^[\x21\x23-\x5b\x5d-\x7e]+$")


def parse_scope(raw: str) -> tuple[str, ...]:
    """Split a space-delimited scope string into unique tokens, keeping their order."""
    tokens = [t for t in raw.split(" ") if t]
    for token in tokens:
        if not _SCOPE_TOKEN.match(token):
            raise InvalidScope(f"scope value {token!r} has characters RFC 6749 does not allow")
    return tuple(dict.fromkeys(tokens))


def grant_scope(
    requested: str | None,
    allowed: Sequence[str],
    refusal: str = "scope not allowed for this client",
) -> tuple[str, ...]:
    """The scope to grant: the request limited to ``allowed``, or all of it when none is asked.

    RFC 6749 section 3.3 lets the server fall back to a default when ``scope`` is omitted;
    asking for anything beyond ``allowed`` (the client's registered scopes, a refresh token's
    original grant (section 6), a subject token's scope (RFC 8693 section 2.1)) is refused
    with invalid_scope, ``refusal`` saying what was exceeded.
    """
    if requested is None:
        return tuple(allowed)
    asked = parse_scope(requested)
    extra = [s for s in asked if s not in allowed]
    if extra:
        raise InvalidScope(f"{refusal}: {' '.join(extra)}")
    return asked
