"""Client authentication with a rotated secret (RFC 6749 section 2.3.1): the secret a rotation
replaced is accepted until its overlap ends, and never after; the current one always is."""

from __future__ import annotations

from dataclasses import replace

import pytest

from idp.oauth.client_auth import PresentedCredentials, authenticate, hash_client_secret
from idp.oauth.errors import InvalidClient
from idp.store.base import ClientRecord
from tests.support.records import a_client

NOW = 1_000_000.0


def rotated(expires_at: float | None) -> ClientRecord:
    return replace(
        a_client(),
        secret_hash=hash_client_secret("new"),
        previous_secret_hash=hash_client_secret("old"),
        previous_secret_expires_at=expires_at,
    )


def presented(secret: str) -> PresentedCredentials:
    return PresentedCredentials("client_secret_basic", "c1", secret)


def test_the_old_secret_works_until_the_overlap_ends() -> None:
    client = rotated(NOW + 60)
    assert authenticate(client, presented("new"), NOW) is client
    assert authenticate(client, presented("old"), NOW + 59.9) is client
    with pytest.raises(InvalidClient):
        authenticate(client, presented("old"), NOW + 60)
    assert authenticate(client, presented("new"), NOW + 10**6) is client


@pytest.mark.parametrize("expires_at", [None, NOW - 1])
def test_an_old_secret_without_a_running_overlap_is_refused(expires_at: float | None) -> None:
    client = rotated(expires_at)
    with pytest.raises(InvalidClient):
        authenticate(client, presented("old"), NOW)
    with pytest.raises(InvalidClient):
        authenticate(client, presented("neither"), NOW)
