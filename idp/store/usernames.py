"""Usernames: the one form they are compared in, and the characters a new one may hold.

Names a person reads as the same are one account: compatibility and width variants are
folded by Unicode NFKC and letter case by case folding (the mapping of RFC 8265 section
3.3, PRECIS UsernameCaseMapped, without its bidi rule). Sign-in, the login throttle and the
store's uniqueness all use :func:`canonical_username`, so ``Alice`` and ``alice`` cannot
be two accounts. Characters that print as nothing (controls, format characters such as
zero-width joiners, other default-ignorable code points) and spaces are refused when an
account is created, so two names can never differ in an invisible way.
"""

from __future__ import annotations

import unicodedata

MAX_USERNAME_LENGTH = 200

# Unicode general categories refused in a new username: controls, format characters
# (U+200B-U+200F, U+2060, U+FEFF ...), surrogates, private use, unassigned, separators.
_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zs", "Zl", "Zp"})

# Default-ignorable code points outside those categories: they too print as nothing.
_INVISIBLE = frozenset(
    {"\u034f", "\u115f", "\u1160", "\u17b4", "\u17b5", "\u3164", "\uffa0"}
    | {chr(c) for c in range(0xFE00, 0xFE10)}  # variation selectors
)

USERNAME_RULE = (
    f"username must be 1 to {MAX_USERNAME_LENGTH} characters with no spaces and no control, "
    "format or zero-width characters"
)


def canonical_username(username: str) -> str:
    """The form in which usernames are compared: NFKC, case-folded, NFKC again, trimmed."""
    folded = unicodedata.normalize("NFKC", username).casefold()
    return unicodedata.normalize("NFKC", folded).strip()


def _invisible_or_space(char: str) -> bool:
    return char in _INVISIBLE or char.isspace() or unicodedata.category(char) in _REFUSED_CATEGORIES


def username_allowed(username: str) -> bool:
    """Whether a new account may take this (already trimmed) name."""
    if not username or len(username) > MAX_USERNAME_LENGTH:
        return False
    canonical = canonical_username(username)
    if any(_invisible_or_space(c) for c in username + canonical):
        return False
    return bool(canonical)
