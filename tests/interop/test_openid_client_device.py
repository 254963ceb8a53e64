"""openid-client 6 (Node) as a device (RFC 8628) against a real server on both stores: it
finds device_authorization_endpoint in discovery (initiateDeviceAuthorization), the person
allows the device on the verification page, and the library polls until it has the tokens
(pollDeviceAuthorizationGrant), checking the ID token itself.

scripts/test installs the library (tests/interop/openid-client, npm ci from its lock file).
"""

from __future__ import annotations

from typing import Any

from idp.oauth.device import DEVICE_CODE_GRANT
from tests.support.openid_client import needs_openid_client, run_step
from tests.support.server import register_client
from tests.support.sso import PASSWORD, World, hidden_inputs

pytestmark = needs_openid_client


def device(step: str, **values: Any) -> dict[str, Any]:
    """Run one step of device_flow.mjs; its JSON answer."""
    return run_step("device_flow.mjs", step, **values)


def allow_device(world: World, verification_uri_complete: str) -> None:
    """Open the verification link in a browser session, sign in, confirm and allow."""
    with world.browser() as browser:
        first = browser.get(verification_uri_complete)
        assert first.status_code == 303, first.text
        login = browser.get(first.headers["location"])
        fields = hidden_inputs(login.text)
        signed = browser.post(
            "/account/login",
            data={**fields, "username": "alice", "password": PASSWORD},
        )
        assert signed.status_code == 303, signed.text
        form = browser.get(signed.headers["location"])
        confirm = browser.post("/device", data=hidden_inputs(form.text))
        assert confirm.status_code == 200, confirm.text
        decision = hidden_inputs(confirm.text)
        done = browser.post("/device/decision", data={**decision, "decision": "allow"})
        assert done.status_code == 200, done.text


def test_openid_client_signs_a_device_in_by_device_code(world: World) -> None:
    client_id, _ = register_client(
        world.server.settings,
        "cli tool",
        public=True,
        grant_types=[DEVICE_CODE_GRANT, "refresh_token"],
    )
    common = {"issuer": world.url, "client_id": client_id}
    response = device("initiate", scope="openid profile offline_access", **common)
    assert response["verification_uri"] == f"{world.url}/device"
    assert response["interval"] == 5

    allow_device(world, response["verification_uri_complete"])

    tokens = device("poll", response=response, **common)
    assert tokens["claims"]["sub"] == world.user_id
    assert tokens["claims"]["aud"] == client_id
    assert tokens["access_token"] and tokens["refresh_token"]
