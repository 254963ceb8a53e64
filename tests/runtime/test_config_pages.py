"""The page settings: brand name and logo, template overrides and scope words, with one
clear error per bad value; and ``idp serve --scope-description``."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import pytest

from idp.cli.server import _with_scope_descriptions, scope_description
from idp.config import ConfigError, load_settings, new_key_encryption_key

BASE = {"IDP_KEY_ENCRYPTION_KEY": new_key_encryption_key()}


def test_page_defaults() -> None:
    settings = load_settings(BASE)
    assert settings.brand_name == "Sign-in"
    assert settings.brand_logo_url is None and settings.brand_logo_file is None
    assert settings.templates_dir is None
    assert settings.scope_descriptions == ()


def test_page_settings_are_read(tmp_path: Path) -> None:
    logo = tmp_path / "Logo.SVG"
    logo.write_text("<svg xmlns='http://www.w3.org/2000/svg'/>")
    settings = load_settings(
        {
            **BASE,
            "IDP_BRAND_NAME": "  Acme Login ",
            "IDP_BRAND_LOGO_URL": str(logo),
            "IDP_TEMPLATES_DIR": str(tmp_path),
            "IDP_SCOPE_DESCRIPTIONS": json.dumps({"orders:read": " see your orders "}),
        }
    )
    assert settings.brand_name == "Acme Login"
    assert settings.brand_logo_file == logo and settings.brand_logo_url is None
    assert settings.templates_dir == tmp_path
    assert settings.scope_descriptions == (("orders:read", "see your orders"),)
    remote = load_settings({**BASE, "IDP_BRAND_LOGO_URL": "https://cdn.example.com/a.png"})
    assert remote.brand_logo_url == "https://cdn.example.com/a.png"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("IDP_BRAND_NAME", " "),
        ("IDP_BRAND_NAME", "x" * 65),
        ("IDP_BRAND_LOGO_URL", "http://cdn.example.com/logo.png"),
        ("IDP_BRAND_LOGO_URL", "javascript://alert(1)"),
        ("IDP_BRAND_LOGO_URL", "/no/such/logo.png"),
        ("IDP_BRAND_LOGO_URL", "README.md"),
        ("IDP_TEMPLATES_DIR", "/no/such/directory"),
        ("IDP_SCOPE_DESCRIPTIONS", "orders:read=see your orders"),
        ("IDP_SCOPE_DESCRIPTIONS", '["orders:read"]'),
        ("IDP_SCOPE_DESCRIPTIONS", '{"orders read": "two scopes"}'),
        ("IDP_SCOPE_DESCRIPTIONS", '{"orders:read": ""}'),
        ("IDP_SCOPE_DESCRIPTIONS", '{"orders:read": 1}'),
    ],
)
def test_bad_page_setting_names_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        load_settings({**BASE, name: value})


def test_a_logo_file_over_one_mebibyte_is_refused(tmp_path: Path) -> None:
    big = tmp_path / "big.png"
    big.write_bytes(b"\0" * (1024 * 1024 + 1))
    with pytest.raises(ConfigError, match="over 1 MiB"):
        load_settings({**BASE, "IDP_BRAND_LOGO_URL": str(big)})


def test_serve_scope_descriptions_override_the_setting_and_reach_the_workers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env = {**BASE, "IDP_SCOPE_DESCRIPTIONS": '{"a": "one", "b": "two"}'}
    monkeypatch.setenv("IDP_SCOPE_DESCRIPTIONS", env["IDP_SCOPE_DESCRIPTIONS"])
    given = [scope_description('b="changed"'), scope_description("c=three")]
    settings = _with_scope_descriptions(load_settings(env), given)
    assert settings.scope_descriptions == (("a", "one"), ("b", "changed"), ("c", "three"))
    worker = load_settings({**BASE, "IDP_SCOPE_DESCRIPTIONS": os.environ["IDP_SCOPE_DESCRIPTIONS"]})
    assert worker.scope_descriptions == settings.scope_descriptions


@pytest.mark.parametrize("text", ["no-equals", "=words", "scope=", "scope=  ", 'scope=""'])
def test_a_bad_scope_description_option_is_refused(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        scope_description(text)
