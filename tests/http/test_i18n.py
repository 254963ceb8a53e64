"""The page catalogues and the choice of language: every German .mo is what its .po
compiles to, every message of the templates and of the Python page words is translated,
and Accept-Language with q-values and ui_locales pick the language."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from idp.http.i18n import (
    LOCALES_DIR,
    accepted_languages,
    available_languages,
    choose_language,
    translate,
)
from idp.sso.login import throttled_message
from idp.sso.text import N_

ROOT = Path(__file__).resolve().parents[2]
KEYWORDS = {**DEFAULT_KEYWORDS, "N_": None, "Nn_": (1, 2)}
"""As scripts/translations extracts: gettext's names, and idp.sso.text's markers."""


def catalogue(language: str) -> Catalog:
    with (LOCALES_DIR / language / "LC_MESSAGES" / "messages.po").open("rb") as handle:
        return read_po(handle, locale=language)


def extracted() -> dict[str, str | None]:
    """Every message id Babel finds with babel.cfg (and its plural form, if any)."""
    with (ROOT / "babel.cfg").open() as handle:
        method_map, options_map = parse_mapping_cfg(handle)
    found: dict[str, str | None] = {}
    for _, _, message, _, _ in extract_from_dir(
        str(ROOT), method_map, options_map, keywords=KEYWORDS
    ):
        if isinstance(message, tuple):
            found[message[0]] = message[1]
        else:
            found[message] = None
    return found


def test_german_is_offered_and_english_first() -> None:
    assert available_languages()[0] == "en"
    assert "de" in available_languages()


@pytest.mark.parametrize("language", [n for n in available_languages() if n != "en"])
def test_compiled_catalogue_is_up_to_date_with_its_source(language: str) -> None:
    compiled = io.BytesIO()
    write_mo(compiled, catalogue(language))
    mo = LOCALES_DIR / language / "LC_MESSAGES" / "messages.mo"
    assert mo.read_bytes() == compiled.getvalue(), "run scripts/translations compile"


def test_every_page_message_has_a_german_translation() -> None:
    german = catalogue("de")
    messages = extracted()
    assert "Sign in" in messages and "Incorrect username or password." in messages
    assert "Too many failed sign-ins. Try again in %(count)d seconds." in messages.values()
    missing = []
    for msgid, plural in messages.items():
        entry = german.get(msgid)
        if entry is None or entry.fuzzy:
            missing.append(msgid)
            continue
        forms = entry.string if isinstance(entry.string, tuple) else (entry.string,)
        if not all(forms) or (plural is not None and len(forms) < 2):
            missing.append(msgid)
    assert not missing, "untranslated in idp/locales/de: " + "; ".join(missing)


def test_python_page_words_are_translated_with_their_values() -> None:
    assert translate("de", N_("Incorrect username or password.")) == (
        "Benutzername oder Passwort ist falsch."
    )
    assert translate("en", throttled_message(1)) == (
        "Too many failed sign-ins. Try again in 1 second."
    )
    assert throttled_message(5) == "Too many failed sign-ins. Try again in 5 seconds."
    assert "5 Sekunden" in translate("de", throttled_message(5))
    assert "3 Minuten" in translate("de", throttled_message(150))
    assert translate("de", "a text no catalogue has") == "a text no catalogue has"


@pytest.mark.parametrize(
    ("header", "tags"),
    [
        ("de-DE,de;q=0.9,en;q=0.5", ["de-DE", "de", "en"]),
        ("en;q=0.1, fr, de;q=0.5", ["fr", "de", "en"]),
        ("de;q=0, en", ["en"]),
        ("*;q=0.2, it", ["it", "*"]),
        ("; q=1, <script>, en;q=bad", ["en"]),
        (None, []),
    ],
)
def test_accept_language_is_read_with_its_quality_values(
    header: str | None, tags: list[str]
) -> None:
    assert accepted_languages(header) == tags


@pytest.mark.parametrize(
    ("header", "ui_locales", "chosen"),
    [
        ("de", (), "de"),
        ("de-CH;q=0.9, en;q=0.8", (), "de"),
        ("en", ("de",), "de"),
        ("de", ("en-US",), "en"),
        ("de", ("fr", "ja"), "de"),
        ("fr, it", (), "en"),
        ("*", (), "en"),
        (None, (), "en"),
    ],
)
def test_ui_locales_win_over_the_browser(
    header: str | None, ui_locales: tuple[str, ...], chosen: str
) -> None:
    assert choose_language(header, ui_locales, ("en", "de")) == chosen


def test_a_new_catalogue_is_all_a_language_needs(tmp_path: Path) -> None:
    for name in ("fr", "pt_BR", "not a language"):
        (tmp_path / name / "LC_MESSAGES").mkdir(parents=True)
        (tmp_path / name / "LC_MESSAGES" / "messages.mo").write_bytes(b"")
    (tmp_path / "it" / "LC_MESSAGES").mkdir(parents=True)  # no compiled catalogue yet
    assert available_languages(tmp_path) == ("en", "fr", "pt_BR")
    assert choose_language("pt-br, fr;q=0.5", (), available_languages(tmp_path)) == "pt_BR"
    assert choose_language("pt", (), available_languages(tmp_path)) == "pt_BR"
