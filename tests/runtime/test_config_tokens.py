"""Settings of refresh tokens, login throttling and housekeeping: defaults and bad values."""

from __future__ import annotations

import pytest

from idp.config import ConfigError, load_settings, new_key_encryption_key

BASE = {
    "IDP_DATABASE_URL": "postgresql://db/idp",
    "IDP_KEY_ENCRYPTION_KEY": new_key_encryption_key(),
}


def test_defaults() -> None:
    settings = load_settings(BASE)
    assert settings.refresh_token_ttl == 30 * 86400
    assert settings.refresh_reuse_grace == 3
    assert settings.login_max_failures == 5
    assert settings.login_max_failures_per_ip == 50
    assert settings.login_failure_window == 900
    assert settings.login_lock_duration == 900
    assert settings.password_min_length == 8
    assert settings.housekeeping_interval == 60


def test_values_are_read() -> None:
    settings = load_settings(
        {
            **BASE,
            "IDP_REFRESH_TOKEN_TTL": "12h",
            "IDP_REFRESH_REUSE_GRACE": "0",
            "IDP_LOGIN_MAX_FAILURES": "3",
            "IDP_LOGIN_MAX_FAILURES_PER_IP": "100",
            "IDP_LOGIN_FAILURE_WINDOW": "1h",
            "IDP_LOGIN_LOCK_DURATION": "30m",
            "IDP_PASSWORD_MIN_LENGTH": "12",
            "IDP_HOUSEKEEPING_INTERVAL": "5m",
        }
    )
    assert settings.refresh_token_ttl == 43200
    assert settings.refresh_reuse_grace == 0
    assert settings.login_max_failures == 3
    assert settings.login_max_failures_per_ip == 100
    assert settings.login_failure_window == 3600
    assert settings.login_lock_duration == 1800
    assert settings.password_min_length == 12
    assert settings.housekeeping_interval == 300


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("IDP_REFRESH_TOKEN_TTL", "0"),
        ("IDP_REFRESH_TOKEN_TTL", "soon"),
        ("IDP_REFRESH_REUSE_GRACE", "-1"),
        ("IDP_REFRESH_REUSE_GRACE", "3 minutes"),
        ("IDP_LOGIN_MAX_FAILURES", "0"),
        ("IDP_LOGIN_MAX_FAILURES", "five"),
        ("IDP_LOGIN_MAX_FAILURES_PER_IP", "0"),
        ("IDP_LOGIN_FAILURE_WINDOW", "0"),
        ("IDP_LOGIN_LOCK_DURATION", "1w"),
        ("IDP_PASSWORD_MIN_LENGTH", "7"),
        ("IDP_PASSWORD_MIN_LENGTH", "eight"),
        ("IDP_HOUSEKEEPING_INTERVAL", "0"),
    ],
)
def test_bad_values_name_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        load_settings({**BASE, name: value})
