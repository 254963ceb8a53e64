"""The language a page is served in, and its message catalogue.

Pages are written in English (the message ids); every other language is a gettext
catalogue under ``idp/locales/<lang>/LC_MESSAGES/messages.mo``, compiled with Babel from
the ``messages.po`` beside it. The languages offered are English plus every directory
there holding a compiled catalogue: a translator adds a language by adding a catalogue.

The language is chosen from the OpenID Connect ``ui_locales`` of the pending request
(Core 1.0 section 3.1.2.1), which wins, then the browser's ``Accept-Language`` (RFC 9110
section 12.5.4, q-values honoured), then English.
"""

from __future__ import annotations

import gettext
import re
from collections.abc import Iterable, Sequence
from functools import cache
from importlib import resources
from pathlib import Path

from babel.support import Translations

from idp.sso.text import PageText

SOURCE_LANGUAGE = "en"
DOMAIN = "messages"
LOCALES_DIR = Path(str(resources.files("idp").joinpath("locales")))
_TAG = re.compile(r"^[A-Za-z]{1,8}(?:[-_][A-Za-z0-9]{1,8})*$")
_Q = re.compile(r"^q=([01](?:\.\d{0,3})?)$", re.IGNORECASE)


def normal_tag(tag: str) -> str:
    """A language tag in the catalogue directory's form: ``pt-br`` becomes ``pt_BR``."""
    primary, *rest = re.split(r"[-_]", tag.strip())
    return "_".join([primary.lower(), *(part.upper() if len(part) == 2 else part for part in rest)])


def html_tag(language: str) -> str:
    """The BCP 47 form of a catalogue's language, for ``<html lang>`` and Content-Language."""
    return language.replace("_", "-")


@cache
def available_languages(locales_dir: Path = LOCALES_DIR) -> tuple[str, ...]:
    """English, then each language with a compiled catalogue in ``locales_dir``, sorted."""
    found = sorted(
        entry.name
        for entry in (locales_dir.iterdir() if locales_dir.is_dir() else ())
        if (entry / "LC_MESSAGES" / f"{DOMAIN}.mo").is_file() and _TAG.match(entry.name)
    )
    return (SOURCE_LANGUAGE, *(normal_tag(name) for name in found if name != SOURCE_LANGUAGE))


def accepted_languages(header: str | None) -> list[str]:
    """The tags of an Accept-Language header, most wanted first (RFC 9110 section 12.5.4).

    A tag with ``q=0`` is not acceptable and left out; an unreadable entry is skipped.
    """
    ranked: list[tuple[float, int, str]] = []
    for index, item in enumerate((header or "").split(",")[:32]):
        tag, *params = (part.strip() for part in item.split(";"))
        quality = 1.0
        for param in params:
            match = _Q.match(param)
            if match:
                quality = float(match.group(1))
        if quality > 0 and (tag == "*" or _TAG.match(tag)):
            ranked.append((-quality, index, tag))
    return [tag for _, _, tag in sorted(ranked)]


def pick(wanted: Iterable[str], available: Sequence[str]) -> str | None:
    """The first available language matching a wanted tag: exactly, or by its primary tag
    (``de-AT`` is served ``de``), or the wanted primary by a regional catalogue."""
    offered = {language.lower(): language for language in available}
    for tag in wanted:
        if tag == "*":
            return available[0]
        exact = normal_tag(tag).lower()
        primary = exact.split("_")[0]
        for candidate in (exact, primary):
            if candidate in offered:
                return offered[candidate]
        regional = [language for language in available if language.startswith(primary + "_")]
        if regional:
            return regional[0]
    return None


def choose_language(
    accept_language: str | None,
    ui_locales: Sequence[str] = (),
    available: Sequence[str] | None = None,
) -> str:
    """The language to serve: the first ``ui_locales`` one we have, else the browser's
    preference, else English."""
    offered = available_languages() if available is None else available
    return (
        pick(ui_locales, offered)
        or pick(accepted_languages(accept_language), offered)
        or SOURCE_LANGUAGE
    )


@cache
def translations(language: str) -> gettext.NullTranslations:
    """The compiled catalogue of ``language`` (English: the message ids themselves)."""
    if language == SOURCE_LANGUAGE:
        return gettext.NullTranslations()
    return Translations.load(str(LOCALES_DIR), [language], DOMAIN)


def translate(language: str, message: str) -> str:
    """``message`` in ``language``: a :class:`PageText` by its id and values, any other
    text by itself as id (unchanged when the catalogue lacks it)."""
    catalogue = translations(language)
    if not isinstance(message, PageText):
        return catalogue.gettext(message)
    if message.plural is not None and message.number is not None:
        chosen = catalogue.ngettext(message.msgid, message.plural, message.number)
    else:
        chosen = catalogue.gettext(message.msgid)
    return chosen % dict(message.values) if message.values else chosen
