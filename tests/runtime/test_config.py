"""Settings from the environment: defaults, and one clear error per bad value."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from idp.config import (
    ConfigError,
    create_key_file,
    issuer_mismatch,
    load_settings,
    new_key_encryption_key,
    parse_duration,
    served_issuer,
)

KEK = new_key_encryption_key()


def test_defaults_for_the_embedded_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings({}, key_file_may_be_missing=True)
    assert settings.issuer == "http://127.0.0.1:8000"
    assert settings.database_url == "sqlite:///var/idp.db"
    assert settings.access_token_ttl == 600
    assert settings.jwks_max_age == 300
    assert settings.rsa_key_bits == 2048
    assert settings.signing_algs == ("RS256", "ES256")
    assert settings.id_token_ttl == 3600
    assert settings.key_rotation_interval == 30 * 86400
    assert settings.key_prepublish == 2 * 300
    kek_file = tmp_path / "var" / "idp.db.kek"
    assert settings.key_encryption_key_file == kek_file
    assert settings.key_encryption_key_missing
    assert list(tmp_path.iterdir()) == [], "loading settings never creates a file"
    create_key_file(kek_file)
    assert stat.S_IMODE(os.stat(kek_file).st_mode) == 0o600
    loaded = load_settings({})
    assert load_settings({}).key_encryption_key == loaded.key_encryption_key
    assert len(loaded.key_encryption_key) == 32
    assert loaded.key_encryption_key_source == str(kek_file)
    assert KEK not in repr(loaded)
    assert kek_file.read_text().strip() not in repr(loaded)


def test_the_key_file_belongs_to_the_database_not_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An absolute database URL names one key file from whatever directory a command runs."""
    env = {"IDP_DATABASE_URL": f"sqlite:///{tmp_path}/data/idp.db"}
    found = set()
    for directory in ("a", "b"):
        (tmp_path / directory).mkdir()
        monkeypatch.chdir(tmp_path / directory)
        found.add(load_settings(env, key_file_may_be_missing=True).key_encryption_key_file)
    assert found == {tmp_path / "data" / "idp.db.kek"}
    missing = r"^IDP_KEY_ENCRYPTION_KEY: .*idp\.db\.kek does not exist"
    with pytest.raises(ConfigError, match=missing):
        load_settings(env)
    assert not (tmp_path / "data").exists()
    assert load_settings({**env, "IDP_KEY_ENCRYPTION_KEY": KEK}).key_encryption_key_file is None


@pytest.mark.parametrize(
    ("raw", "seconds"), [("90", 90), ("90s", 90), ("15m", 900), ("12h", 43200), ("30d", 2592000)]
)
def test_durations(raw: str, seconds: int) -> None:
    assert parse_duration("X", raw) == seconds


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("IDP_ISSUER", "http://example.com"),
        ("IDP_ISSUER", "https://example.com/?q=1"),
        ("IDP_ISSUER", "ftp://example.com"),
        ("IDP_ISSUER", "https://example.com:99999"),
        ("IDP_DATABASE_URL", "mysql://x"),
        ("IDP_DATABASE_URL", "sqlite:///"),
        ("IDP_KEY_ENCRYPTION_KEY", "c2hvcnQ"),
        ("IDP_ACCESS_TOKEN_TTL", "ten minutes"),
        ("IDP_ACCESS_TOKEN_TTL", "0"),
        ("IDP_JWKS_MAX_AGE", "-5"),
        ("IDP_ID_TOKEN_TTL", "1 hour"),
        ("IDP_KEY_ROTATION_INTERVAL", "0"),
        ("IDP_KEY_PREPUBLISH", "soon"),
        ("IDP_RSA_KEY_BITS", "1024"),
        ("IDP_SIGNING_ALGS", "HS256"),
        ("IDP_TRUSTED_PROXIES", "not-an-ip"),
        ("IDP_HSTS_MAX_AGE", "a year"),
        ("IDP_BODY_READ_TIMEOUT", "0"),
        ("IDP_ALLOW_PRIVATE_BACKCHANNEL", "maybe"),
        ("IDP_BATCH_IO_THREADS", "sometimes"),
        ("IDP_REAUTH_MAX_AGE", "0"),
        ("IDP_WEBAUTHN_RP_NAME", "   "),
        ("IDP_WEBAUTHN_RP_NAME", "x" * 65),
    ],
)
def test_bad_value_names_the_variable(name: str, value: str) -> None:
    env = {"IDP_KEY_ENCRYPTION_KEY": KEK, name: value}
    with pytest.raises(ConfigError) as caught:
        load_settings(env)
    message = str(caught.value)
    assert message.startswith(name)
    assert "\n" not in message


def test_postgresql_requires_a_key_encryption_key() -> None:
    with pytest.raises(ConfigError, match="IDP_KEY_ENCRYPTION_KEY"):
        load_settings({"IDP_DATABASE_URL": "postgresql://u@h/db"})


@pytest.mark.parametrize(
    "issuer",
    ["http://localhost:8000", "http://127.0.0.1", "http://[::1]:9000", "https://id.example"],
)
def test_loopback_http_and_any_https_issuer_accepted(issuer: str) -> None:
    settings = load_settings({"IDP_ISSUER": issuer + "/", "IDP_KEY_ENCRYPTION_KEY": KEK})
    assert settings.issuer == issuer


def test_passkey_and_account_settings() -> None:
    defaults = load_settings({"IDP_KEY_ENCRYPTION_KEY": KEK})
    assert (defaults.reauth_max_age, defaults.webauthn_rp_name) == (300, "Sign-in")
    chosen = load_settings(
        {
            "IDP_KEY_ENCRYPTION_KEY": KEK,
            "IDP_REAUTH_MAX_AGE": "10m",
            "IDP_WEBAUTHN_RP_NAME": " Example Corp ",
        }
    )
    assert (chosen.reauth_max_age, chosen.webauthn_rp_name) == (600, "Example Corp")


def test_trusted_proxies_and_algs_parse() -> None:
    settings = load_settings(
        {
            "IDP_KEY_ENCRYPTION_KEY": KEK,
            "IDP_TRUSTED_PROXIES": "10.0.0.1, 192.168.0.0/16",
            "IDP_SIGNING_ALGS": "ES256",
        }
    )
    assert [str(n) for n in settings.trusted_proxies] == ["10.0.0.1/32", "192.168.0.0/16"]
    assert settings.signing_algs == ("ES256",)


def test_key_lifecycle_durations_may_be_one_second_and_prepublish_follows_max_age() -> None:
    base = {"IDP_KEY_ENCRYPTION_KEY": KEK}
    short = load_settings({**base, "IDP_KEY_ROTATION_INTERVAL": "1s", "IDP_JWKS_MAX_AGE": "1"})
    assert short.key_rotation_interval == 1
    assert short.key_prepublish == 2
    explicit = load_settings({**base, "IDP_KEY_PREPUBLISH": "15m", "IDP_ID_TOKEN_TTL": "5m"})
    assert explicit.key_prepublish == 900
    assert explicit.id_token_ttl == 300


def test_transport_defaults_and_how_to_turn_hsts_off() -> None:
    base = {"IDP_KEY_ENCRYPTION_KEY": KEK, "IDP_ISSUER": "https://id.example"}
    settings = load_settings(base)
    assert settings.hsts and settings.hsts_max_age == 31536000
    assert settings.body_read_timeout == 10
    assert settings.allow_private_backchannel is False
    assert not load_settings({**base, "IDP_HSTS_MAX_AGE": "0"}).hsts
    assert not load_settings({**base, "IDP_ISSUER": "http://127.0.0.1:8000"}).hsts
    assert load_settings({**base, "IDP_HSTS_MAX_AGE": "1d"}).hsts_max_age == 86400
    assert load_settings({**base, "IDP_ALLOW_PRIVATE_BACKCHANNEL": "1"}).allow_private_backchannel
    assert settings.batch_io_threads is True
    assert load_settings({**base, "IDP_BATCH_IO_THREADS": "off"}).batch_io_threads is False


@pytest.mark.parametrize(
    ("host", "port", "tls", "issuer"),
    [
        ("127.0.0.1", 9000, False, "http://127.0.0.1:9000"),
        ("0.0.0.0", 8000, False, "http://127.0.0.1:8000"),  # noqa: S104
        ("::", 8000, False, "http://[::1]:8000"),
        ("localhost", 80, False, "http://localhost"),
        ("idp.example.com", 443, True, "https://idp.example.com"),
        ("192.0.2.7", 8443, True, "https://192.0.2.7:8443"),
    ],
)
def test_served_issuer_follows_the_address(host: str, port: int, tls: bool, issuer: str) -> None:
    assert served_issuer(host, port, tls) == issuer


def test_served_issuer_needs_idp_issuer_for_plain_http_off_loopback() -> None:
    with pytest.raises(ConfigError, match="IDP_ISSUER: required when serving plain http"):
        served_issuer("192.0.2.7", 8000, tls=False)


@pytest.mark.parametrize(
    ("issuer", "host", "port", "matches"),
    [
        ("http://localhost:8000", "127.0.0.1", 8000, True),
        ("http://127.0.0.1:8000", "0.0.0.0", 8000, True),  # noqa: S104
        ("http://[::1]:8000", "::1", 8000, True),
        ("http://localhost:8000", "127.0.0.1", 9000, False),
        ("http://127.0.0.1:8000", "::1", 8000, False),
        ("http://127.0.0.1:8000", "192.0.2.7", 8000, False),
        ("https://idp.example.com", "0.0.0.0", 8000, True),  # noqa: S104
    ],
)
def test_issuer_mismatch_only_for_a_loopback_issuer(
    issuer: str, host: str, port: int, matches: bool
) -> None:
    assert (issuer_mismatch(issuer, host, port) is None) is matches


def test_issuer_configured_says_whether_idp_issuer_was_set() -> None:
    env = {"IDP_KEY_ENCRYPTION_KEY": new_key_encryption_key()}
    assert not load_settings(env).issuer_configured
    assert load_settings({**env, "IDP_ISSUER": "http://localhost:9000"}).issuer_configured


def test_log_format_is_plain_or_json() -> None:
    env = {"IDP_KEY_ENCRYPTION_KEY": new_key_encryption_key()}
    assert load_settings(env).log_format == "plain"
    assert load_settings({**env, "IDP_LOG_FORMAT": "JSON"}).log_format == "json"
    with pytest.raises(ConfigError, match="IDP_LOG_FORMAT: expected plain or json"):
        load_settings({**env, "IDP_LOG_FORMAT": "xml"})
