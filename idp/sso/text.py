"""Words for a page, kept in English and marked for the page catalogue.

The sso floor decides what a page says but never which language it is said in: a message
is built with :func:`N_` (or :func:`Nn_` when it counts something), which returns the
English text as a ``str`` that also remembers its message id and values. The http floor
looks the id up in the catalogue of the language it serves (``idp.http.i18n``); Babel
finds the ids by these two names (``babel.cfg``, ``scripts/translations``).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType


class PageText(str):
    """English text for a page, with the message id and values it was made from."""

    msgid: str
    plural: str | None
    number: int | None
    """What a plural message counts (it picks the form); None for a singular one."""
    values: Mapping[str, object]

    def __new__(
        cls,
        msgid: str,
        plural: str | None = None,
        number: int | None = None,
        values: Mapping[str, object] | None = None,
    ) -> PageText:
        chosen = plural if plural is not None and number != 1 else msgid
        filled = dict(values or {})
        made = super().__new__(cls, chosen % filled if filled else chosen)
        made.msgid, made.plural, made.number = msgid, plural, number
        made.values = MappingProxyType(filled)
        return made


def N_(msgid: str, **values: object) -> PageText:
    """Mark ``msgid`` (``%(name)s`` placeholders filled from ``values``) for translation."""
    return PageText(msgid, values=values)


def Nn_(singular: str, plural: str, count: int, **values: object) -> PageText:
    """Mark a message that counts ``count`` things (``%(count)d`` in it): ``singular`` for
    one, else ``plural``; a catalogue picks its language's own form."""
    return PageText(singular, plural, count, {"count": count, **values})
