"""The device authorization request and response (RFC 8628 sections 3.1 and 3.2).

An authenticated client (or a public one, by client_id) registered for the device code
grant asks for a device code; the scope is checked as at /authorize for that client. The
answer names the verification page (issuer + ``/device``), also with the user code in it
(``verification_uri_complete``, section 3.3.1), the lifetime and the polling interval.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from idp.clock import Clock
from idp.identifiers import new_identifier
from idp.oauth.authorization import check_scope
from idp.oauth.device import (
    DEVICE_CODE_GRANT,
    DEVICE_CODE_LIFETIME,
    POLL_INTERVAL,
    device_code_hash,
    new_device_code,
    new_user_code,
    normalise_user_code,
    user_code_hash,
)
from idp.oauth.grants.base import check_grant_allowed
from idp.store.base import ClientRecord, DeviceCodeRecord, DeviceCodeStore

VERIFICATION_PATH = "/device"


@dataclass(frozen=True)
class DeviceAuthorization:
    """A device authorization response (RFC 8628 section 3.2)."""

    device_code: str
    user_code: str
    verification_uri: str
    expires_in: int
    interval: int

    def body(self) -> dict[str, Any]:
        complete = f"{self.verification_uri}?{urlencode({'user_code': self.user_code})}"
        return {
            "device_code": self.device_code,
            "user_code": self.user_code,
            "verification_uri": self.verification_uri,
            "verification_uri_complete": complete,
            "expires_in": self.expires_in,
            "interval": self.interval,
        }


async def authorize_device(
    store: DeviceCodeStore,
    clock: Clock,
    issuer: str,
    client: ClientRecord,
    params: Mapping[str, str],
) -> DeviceAuthorization:
    """Check the request and store a new device code for it (RFC 8628 section 3.2).

    unauthorized_client when the client is not registered for the grant; invalid_scope as
    at /authorize.
    """
    check_grant_allowed(client, DEVICE_CODE_GRANT)
    scope = check_scope(params, client)
    device_code = new_device_code()
    user_code = new_user_code()
    normalised = normalise_user_code(user_code)
    assert normalised is not None  # a code just made is always well formed
    now = clock()
    await store.create_device_code(
        DeviceCodeRecord(
            id=new_identifier(16),
            device_code_hash=device_code_hash(device_code),
            user_code_hash=user_code_hash(normalised),
            client_id=client.client_id,
            scope=scope,
            created_at=now,
            expires_at=now + DEVICE_CODE_LIFETIME,
            poll_interval=POLL_INTERVAL,
        )
    )
    return DeviceAuthorization(
        device_code=device_code,
        user_code=user_code,
        verification_uri=issuer + VERIFICATION_PATH,
        expires_in=DEVICE_CODE_LIFETIME,
        interval=POLL_INTERVAL,
    )
