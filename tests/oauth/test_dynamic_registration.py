"""The registration rules of RFC 7591 and 7592 as pure functions: metadata to a client,
open registration's native-app policy, the stored name, and the token comparison."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from idp.oauth.client_auth import hash_client_secret
from idp.oauth.dynamic_registration import (
    InvalidClientMetadataError,
    InvalidRedirectUriError,
    client_metadata,
    client_name,
    client_request,
    open_registration_refusal,
    registered_client,
    registration_token_matches,
    replaced_client,
)
from idp.oauth.uris import STRICT_BACKCHANNEL

NATIVE: dict[str, Any] = {
    "client_name": "Desktop",
    "redirect_uris": ["http://127.0.0.1:5000/cb"],
    "token_endpoint_auth_method": "none",
}


def test_a_native_app_is_open_to_register() -> None:
    assert open_registration_refusal(client_request(NATIVE)) is None
    ipv6 = {**NATIVE, "redirect_uris": ["http://[::1]:5000/cb", "com.example.app:/cb"]}
    assert open_registration_refusal(client_request(ipv6)) is None


@pytest.mark.parametrize(
    "change",
    [
        {"token_endpoint_auth_method": "client_secret_basic"},
        {"redirect_uris": ["https://app.example/cb"]},
        {"redirect_uris": ["http://localhost:5000/cb"]},
        {"post_logout_redirect_uris": ["https://app.example/bye"]},
        {"jwks_uri": "https://app.example/jwks.json"},
        {"backchannel_logout_uri": "https://app.example/logout"},
    ],
)
def test_anything_else_needs_a_token(change: dict[str, Any]) -> None:
    assert open_registration_refusal(client_request({**NATIVE, **change})) is not None


def test_response_types_go_with_the_authorization_code_grant() -> None:
    client_request({**NATIVE, "response_types": ["code"]})
    with pytest.raises(InvalidClientMetadataError):
        client_request({**NATIVE, "response_types": []})
    machine = {"grant_types": ["client_credentials"], "response_types": ["code"]}
    with pytest.raises(InvalidClientMetadataError):
        client_request(machine)
    with pytest.raises(InvalidRedirectUriError):
        client_request({**NATIVE, "redirect_uris": ["http://app.example/cb"]})


def test_the_stored_name_carries_the_client_id_and_the_metadata_does_not() -> None:
    client, secret = registered_client(client_request(NATIVE), 1000.0, STRICT_BACKCHANNEL)
    assert secret is None and client.require_consent
    assert client.name == f"Desktop ({client.client_id})" and client_name(client) == "Desktop"
    document = client_metadata(client, "https://idp.example")
    assert document["client_name"] == "Desktop"
    assert document["registration_client_uri"] == f"https://idp.example/register/{client.client_id}"
    assert "client_secret_expires_at" not in document


def test_a_replacement_keeps_identity_and_administrator_settings() -> None:
    current, _ = registered_client(client_request(NATIVE), 1000.0, STRICT_BACKCHANNEL)
    current = replace(
        current,
        registration_token_hash=hash_client_secret("rat"),
        audiences=("https://api.example",),
        require_mfa=True,
    )
    renamed = client_request({**NATIVE, "client_name": "Renamed"})
    updated = replaced_client(current, renamed, STRICT_BACKCHANNEL)
    assert updated.client_id == current.client_id and client_name(updated) == "Renamed"
    assert updated.registration_token_hash == current.registration_token_hash
    assert updated.audiences == ("https://api.example",) and updated.require_mfa
    assert updated.created_at == 1000.0
    other_method = client_request({**NATIVE, "token_endpoint_auth_method": "client_secret_post"})
    with pytest.raises(InvalidClientMetadataError):
        replaced_client(current, other_method, STRICT_BACKCHANNEL)


def test_registration_tokens_match_their_own_client_only() -> None:
    client, _ = registered_client(client_request(NATIVE), 1000.0, STRICT_BACKCHANNEL)
    client = replace(client, registration_token_hash=hash_client_secret("rat"))
    assert registration_token_matches(client, "rat")
    assert not registration_token_matches(client, "other")
    assert not registration_token_matches(None, "rat")
    assert not registration_token_matches(replace(client, registration_token_hash=None), "rat")
