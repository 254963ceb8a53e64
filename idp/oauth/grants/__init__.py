"""Grant handlers keyed by grant_type; enabling a grant means adding it to GRANTS."""

from __future__ import annotations

from idp.oauth.grants.authorization_code import AuthorizationCodeGrant
from idp.oauth.grants.base import GrantHandler
from idp.oauth.grants.client_credentials import ClientCredentialsGrant
from idp.oauth.grants.device_code import DeviceCodeGrant
from idp.oauth.grants.refresh_token import RefreshTokenGrant
from idp.oauth.grants.token_exchange import TokenExchangeGrant

GRANTS: dict[str, GrantHandler] = {
    handler.grant_type: handler
    for handler in (
        ClientCredentialsGrant(),
        AuthorizationCodeGrant(),
        RefreshTokenGrant(),
        TokenExchangeGrant(),
        DeviceCodeGrant(),
    )
}

__all__ = ["GRANTS", "GrantHandler"]
