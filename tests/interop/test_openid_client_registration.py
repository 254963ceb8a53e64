"""openid-client 6 (Node) registers itself with dynamicClientRegistration (RFC 7591) at a
real server on both stores, then uses the client it got: a confidential client registered
with an initial access token takes a client_credentials token; a native app registered
without one (IDP_OPEN_REGISTRATION=1) signs a person in, with consent, and redeems the code.

scripts/test installs the library (tests/interop/openid-client, npm ci from its lock file).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from idp.admin.context import AdminContext
from idp.admin.registration import create_initial_access_token
from idp.config import Settings, load_settings
from tests.support.openid_client import needs_openid_client, run_step
from tests.support.server import with_store
from tests.support.sso import PASSWORD, World, hidden_inputs, query_of, verify_jwt

NATIVE_CB = "http://127.0.0.1:8765/native/cb"

pytestmark = needs_openid_client


@pytest.fixture
def settings(env: dict[str, str]) -> Settings:
    """Open registration on, so a native app may register without a token."""
    return replace(load_settings(env), open_registration=True)


def registration(step: str, **values: Any) -> dict[str, Any]:
    """Run one step of registration.mjs; its JSON answer."""
    return run_step("registration.mjs", step, **values)


def initial_token(settings: Settings) -> str:
    async def work(store: Any) -> str:
        _, token = await create_initial_access_token(AdminContext(store, settings), 600, 1)
        return token

    token: str = with_store(settings.database_url, work)
    return token


def test_openid_client_registers_and_takes_a_client_credentials_token(world: World) -> None:
    token = initial_token(world.server.settings)
    got = registration(
        "machine", issuer=world.url, initial_access_token=token, client_name="Interop machine"
    )
    assert got["expires_in"] > 0
    _, claims = verify_jwt(world.url, got["access_token"])
    assert claims["client_id"] == got["client_id"]


def test_openid_client_registers_a_native_app_that_signs_in(world: World) -> None:
    started = registration("native", issuer=world.url, redirect_uri=NATIVE_CB, scope="openid")
    client_id = started["client_id"]
    assert query_of(started["url"])["client_id"] == client_id
    with world.browser() as browser:
        page = browser.get(started["url"])
        assert page.status_code == 200, page.text
        fields = hidden_inputs(page.text)
        form = {"request": fields["request"], "csrf": fields["csrf"]}
        asked = browser.post("/login", data={**form, "username": "alice", "password": PASSWORD})
        # A registered client is a third party: the person is asked first.
        assert asked.status_code == 200 and 'name="decision"' in asked.text, asked.text
        fields = hidden_inputs(asked.text)
        consent = {"request": fields["request"], "csrf": fields["csrf"], "decision": "allow"}
        allowed = browser.post("/consent", data=consent)
    assert allowed.status_code == 303, allowed.text
    callback = allowed.headers["location"]
    assert callback.startswith(NATIVE_CB + "?")
    tokens = registration(
        "redeem",
        issuer=world.url,
        client_id=client_id,
        callback_url=callback,
        code_verifier=started["code_verifier"],
        state=started["state"],
        nonce=started["nonce"],
    )
    assert tokens["claims"]["sub"] == world.user_id
    assert tokens["claims"]["aud"] == client_id
