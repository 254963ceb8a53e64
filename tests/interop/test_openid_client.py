"""openid-client 6 (Node), a certified relying-party library, against a real server on both
stores: it finds the PAR endpoint in discovery, pushes its request, and redeems the code; it
exchanges a user's token (RFC 8693) through its generic grant request.

scripts/test installs the library (tests/interop/openid-client, npm ci from its lock file).
"""

from __future__ import annotations

import json
from typing import Any

import httpx
from joserfc.jwk import ECKey

from idp.config import Settings
from tests.support.openid_client import needs_openid_client, run_step
from tests.support.server import basic, register_client
from tests.support.sso import PASSWORD, WEB_CB, World, query_of, submit_login
from tests.support.tokens import issue

pytestmark = needs_openid_client


def openid_client(step: str, **values: Any) -> dict[str, Any]:
    """Run one step of flow.mjs; its JSON answer."""
    return run_step("flow.mjs", step, **values)


def test_openid_client_pushes_its_request_and_redeems_the_code(world: World) -> None:
    common = {"issuer": world.url, "client_id": world.web}
    started = openid_client("par", redirect_uri=WEB_CB, scope="openid profile", **common)
    url = started["url"]
    assert url.startswith(f"{world.url}/authorize?")
    query = query_of(url)
    assert set(query) == {"client_id", "request_uri"}
    assert query["request_uri"].startswith("urn:ietf:params:oauth:request_uri:")

    with world.browser() as browser:
        page = browser.get(url)
        assert page.status_code == 200, page.text
        done = submit_login(browser, page, "alice", PASSWORD)
    assert done.status_code == 303, done.text
    callback = done.headers["location"]
    assert callback.startswith(WEB_CB + "?")

    tokens = openid_client(
        "redeem",
        callback_url=callback,
        code_verifier=started["code_verifier"],
        state=started["state"],
        nonce=started["nonce"],
        **common,
    )
    assert tokens["claims"]["sub"] == world.user_id
    assert tokens["claims"]["iss"] == world.url
    assert tokens["access_token"]


def test_openid_client_signs_a_request_object_and_redeems_the_code(
    world: World, settings: Settings
) -> None:
    """buildAuthorizationUrlWithJAR: a request object signed with the client's ES256 key."""
    key = ECKey.generate_key("P-256", private=True)
    public = {**key.as_dict(private=False), "kid": "jar-1", "alg": "ES256"}
    client_id, _ = register_client(
        settings,
        "jar",
        public=True,
        redirect_uris=[WEB_CB],
        grant_types=["authorization_code"],
        jwks=json.dumps({"keys": [public]}),
    )
    common = {"issuer": world.url, "client_id": client_id}
    started = openid_client(
        "jar",
        redirect_uri=WEB_CB,
        scope="openid",
        jwk=key.as_dict(private=True),  # type: ignore[arg-type]
        kid="jar-1",
        **common,
    )
    assert set(query_of(started["url"])) >= {"client_id", "request"}
    with world.browser() as browser:
        page = browser.get(started["url"])
        assert page.status_code == 200, page.text
        done = submit_login(browser, page, "alice", PASSWORD)
    assert done.status_code == 303, done.text
    tokens = openid_client(
        "redeem",
        callback_url=done.headers["location"],
        code_verifier=started["code_verifier"],
        state=started["state"],
        nonce=started["nonce"],
        **common,
    )
    assert tokens["claims"]["sub"] == world.user_id


TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"


def test_openid_client_exchanges_a_users_token_through_its_generic_grant_request(
    world: World,
) -> None:
    """genericGrantRequest (RFC 8693): delegation with an actor token, then a DPoP-bound
    impersonation; both tokens introspected by the library."""
    settings = world.server.settings
    front = register_client(settings, "front", grant_types=["refresh_token"], scope="read")
    orders = register_client(
        settings,
        "orders",
        grant_types=[TOKEN_EXCHANGE, "client_credentials"],
        scope="read",
        audiences=["https://orders.api.example"],
    )
    refreshed = httpx.post(
        f"{world.url}/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": issue(settings, front[0], world.user_id),
        },
        headers=basic(*front),
        timeout=30,
    )
    assert refreshed.status_code == 200, refreshed.text
    user_token = refreshed.json()["access_token"]
    actor = httpx.post(
        f"{world.url}/token",
        data={"grant_type": "client_credentials"},
        headers=basic(*orders),
        timeout=30,
    ).json()["access_token"]
    common = {"issuer": world.url, "client_id": orders[0], "client_secret": orders[1]}
    subject = {"subject_token": user_token, "subject_token_type": ACCESS_TOKEN_TYPE}

    delegated = openid_client(
        "exchange",
        parameters={
            **subject,
            "actor_token": actor,
            "actor_token_type": ACCESS_TOKEN_TYPE,
            "scope": "read",
        },
        dpop=False,
        **common,
    )
    assert delegated["response"]["issued_token_type"] == ACCESS_TOKEN_TYPE
    assert delegated["response"]["token_type"].lower() == "bearer"
    assert delegated["response"]["scope"] == "read"
    assert delegated["introspection"]["active"] is True
    assert delegated["introspection"]["sub"] == world.user_id
    assert delegated["introspection"]["act"] == {"sub": orders[0]}

    bound = openid_client("exchange", parameters=subject, dpop=True, **common)
    assert bound["response"]["token_type"].lower() == "dpop"
    assert bound["introspection"]["active"] is True
    assert "jkt" in bound["introspection"]["cnf"]
