"""Token exchange (RFC 8693) at /token over a real server on both stores: impersonation,
delegation (``act``, nested), scope and audience limits, refused subject tokens, the
client's grant and subject-client settings, and revocation reaching exchanged tokens.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey

from idp.oauth.registration import (
    TOKEN_EXCHANGE,
    ClientRequest,
    InvalidClientMetadata,
    build_client,
)
from tests.support.dpop import DpopKey, claims_of
from tests.support.server import basic, register_client, with_store
from tests.support.sso import World, redeem, sign_as_provider, sign_in
from tests.support.tokens import assert_oauth_error, issue

ACCESS = "urn:ietf:params:oauth:token-type:access_token"
ID_TOKEN = "urn:ietf:params:oauth:token-type:id_token"
JWT = "urn:ietf:params:oauth:token-type:jwt"
FRONT_API = "https://front.api.example"
ORDERS_API = "https://orders.api.example"
BILLING_API = "https://billing.api.example"
ELSEWHERE = "https://elsewhere.example"

Client = tuple[str, str]


@dataclass
class Parties:
    """A user signed in at a front end, and two services that exchange its tokens."""

    world: World
    user: str
    front: Client
    orders: Client
    """May exchange any client's tokens, and get its own client_credentials tokens."""
    billing: Client
    """May exchange only tokens issued to orders."""
    refresh_token: str
    user_token: str
    """An access token of the front end for the user (scope openid read write)."""


def post_token(world: World, client: Client, **form: str | list[str]) -> httpx.Response:
    return httpx.post(f"{world.url}/token", data=form, headers=basic(*client), timeout=30)


def ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def exchange(
    world: World, client: Client, subject: str, subject_type: str = ACCESS, **form: str | list[str]
) -> httpx.Response:
    return post_token(
        world,
        client,
        grant_type=TOKEN_EXCHANGE,
        subject_token=subject,
        subject_token_type=subject_type,
        **form,
    )


def introspect(world: World, client: Client, token: str) -> dict[str, Any]:
    response = httpx.post(
        f"{world.url}/introspect", data={"token": token}, headers=basic(*client), timeout=30
    )
    return ok(response)


def own_token(world: World, client: Client) -> str:
    """A client_credentials token of ``client``: its own identity, as an actor token."""
    body = ok(post_token(world, client, grant_type="client_credentials", scope="read"))
    token: str = body["access_token"]
    return token


@pytest.fixture
def parties(world: World) -> Parties:
    settings = world.server.settings
    front = register_client(
        settings,
        "front",
        grant_types=["refresh_token"],
        scope="read write",
        audiences=[FRONT_API],
    )
    orders = register_client(
        settings,
        "orders",
        grant_types=[TOKEN_EXCHANGE, "client_credentials"],
        scope="read write",
        audiences=[ORDERS_API, BILLING_API],
    )
    billing = register_client(
        settings,
        "billing",
        grant_types=[TOKEN_EXCHANGE, "client_credentials"],
        scope="read",
        audiences=[BILLING_API],
        token_exchange_subject_clients=[orders[0]],
    )
    first = issue(settings, front[0], world.user_id)
    body = ok(post_token(world, front, grant_type="refresh_token", refresh_token=first))
    return Parties(
        world,
        world.user_id,
        front,
        orders,
        billing,
        body["refresh_token"],
        body["access_token"],
    )


def test_discovery_lists_the_grant(world: World) -> None:
    document = httpx.get(f"{world.url}/.well-known/openid-configuration", timeout=30).json()
    assert TOKEN_EXCHANGE in document["grant_types_supported"]


def test_impersonation_gives_the_service_a_token_for_the_user(parties: Parties) -> None:
    world = parties.world
    response = exchange(world, parties.orders, parties.user_token)
    body = ok(response)
    assert response.headers["cache-control"] == "no-store"
    assert body["issued_token_type"] == ACCESS
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == world.server.settings.access_token_ttl
    assert body["scope"] == "openid read write"
    assert "refresh_token" not in body
    claims = claims_of(body["access_token"])
    subject = claims_of(parties.user_token)
    assert claims["sub"] == parties.user
    assert claims["client_id"] == parties.orders[0]
    assert claims["aud"] == ORDERS_API
    assert claims["grant_id"] == subject["grant_id"]
    assert "act" not in claims
    answer = introspect(world, parties.orders, body["access_token"])
    assert answer["active"] is True
    assert answer["sub"] == parties.user
    assert answer["client_id"] == parties.orders[0]


def test_audience_and_resource_pick_among_the_clients_audiences(parties: Parties) -> None:
    world = parties.world
    by_audience = ok(exchange(world, parties.orders, parties.user_token, audience=BILLING_API))
    assert claims_of(by_audience["access_token"])["aud"] == BILLING_API
    by_resource = ok(
        exchange(world, parties.orders, parties.user_token, resource=[ORDERS_API, BILLING_API])
    )
    assert claims_of(by_resource["access_token"])["aud"] == [ORDERS_API, BILLING_API]
    both = [BILLING_API, ORDERS_API]
    by_audiences = ok(exchange(world, parties.orders, parties.user_token, audience=both))
    assert claims_of(by_audiences["access_token"])["aud"] == both
    mixed = {"audience": BILLING_API, "resource": [BILLING_API, ORDERS_API]}
    by_both = ok(exchange(world, parties.orders, parties.user_token, **mixed))
    assert claims_of(by_both["access_token"])["aud"] == both
    for target in (
        {"audience": ELSEWHERE},
        {"resource": ELSEWHERE},
        {"audience": FRONT_API},
        {"audience": [BILLING_API, ELSEWHERE]},
    ):
        refused = exchange(world, parties.orders, parties.user_token, **target)
        assert_oauth_error(refused, 400, "invalid_target")


def test_delegation_records_the_actor(parties: Parties) -> None:
    world = parties.world
    actor = own_token(world, parties.orders)
    body = ok(
        exchange(
            world, parties.orders, parties.user_token, actor_token=actor, actor_token_type=ACCESS
        )
    )
    claims = claims_of(body["access_token"])
    assert claims["sub"] == parties.user
    assert claims["act"] == {"sub": parties.orders[0]}
    assert introspect(world, parties.orders, body["access_token"])["act"] == {
        "sub": parties.orders[0]
    }
    url = world.server.settings.database_url
    [audited] = with_store(url, lambda s: s.list_audit(action="token.exchange"))
    assert (audited.actor, audited.subject, audited.outcome) == (
        parties.orders[0],
        parties.user,
        "success",
    )
    assert audited.detail["subject_client"] == parties.front[0]
    assert audited.detail["act"] == {"sub": parties.orders[0]}
    assert parties.user_token not in json.dumps(dict(audited.detail))


def test_a_second_delegation_nests_the_first_actor(parties: Parties) -> None:
    world = parties.world
    orders_actor = own_token(world, parties.orders)
    delegated = ok(
        exchange(
            world,
            parties.orders,
            parties.user_token,
            audience=BILLING_API,
            actor_token=orders_actor,
            actor_token_type=ACCESS,
        )
    )["access_token"]
    billing_actor = own_token(world, parties.billing)
    body = ok(
        exchange(world, parties.billing, delegated, actor_token=billing_actor, actor_token_type=JWT)
    )
    claims = claims_of(body["access_token"])
    assert claims["sub"] == parties.user
    assert claims["client_id"] == parties.billing[0]
    assert claims["act"] == {"sub": parties.billing[0], "act": {"sub": parties.orders[0]}}
    # Impersonation by a further hop keeps the chain recorded so far.
    again = ok(exchange(world, parties.orders, body["access_token"]))
    assert claims_of(again["access_token"])["act"] == claims["act"]


def test_scope_only_narrows(parties: Parties) -> None:
    world = parties.world
    narrowed = ok(exchange(world, parties.orders, parties.user_token, scope="read"))
    assert narrowed["scope"] == "read"
    assert claims_of(narrowed["access_token"])["scope"] == "read"
    widened = exchange(world, parties.orders, parties.user_token, scope="read admin")
    assert_oauth_error(widened, 400, "invalid_scope")
    # billing may use only read: its default is the subject's scope within its own.
    via_orders = ok(exchange(world, parties.orders, parties.user_token))["access_token"]
    assert ok(exchange(world, parties.billing, via_orders))["scope"] == "openid read"
    assert_oauth_error(
        exchange(world, parties.billing, via_orders, scope="write"), 400, "invalid_scope"
    )


def end_grant(parties: Parties, how: str) -> None:
    """End the user's grant at the front end: its refresh token revoked at /revoke, its
    consent revoked (as on the account page), or its sign-in session ended."""
    world = parties.world
    if how == "revoke":
        revoked = httpx.post(
            f"{world.url}/revoke",
            data={"token": parties.refresh_token},
            headers=basic(*parties.front),
            timeout=30,
        )
        assert revoked.status_code == 200, revoked.text
        return
    now = world.clock()
    url = world.server.settings.database_url
    if how == "consent":
        with_store(url, lambda s: s.revoke_consent(parties.user, parties.front[0], now))
    else:
        sid = claims_of(parties.user_token)["sid"]
        with_store(url, lambda s: s.revoke_session_refresh_tokens(sid, now))


@pytest.mark.parametrize("how", ["revoke", "consent", "session"])
def test_ending_the_subjects_grant_ends_exchanged_tokens(parties: Parties, how: str) -> None:
    world = parties.world
    exchanged = ok(exchange(world, parties.orders, parties.user_token))["access_token"]
    actor = own_token(world, parties.orders)
    delegated = ok(
        exchange(
            world, parties.orders, parties.user_token, actor_token=actor, actor_token_type=ACCESS
        )
    )["access_token"]
    assert introspect(world, parties.orders, exchanged)["active"] is True
    end_grant(parties, how)
    assert introspect(world, parties.orders, exchanged) == {"active": False}
    assert introspect(world, parties.orders, delegated) == {"active": False}
    refused = exchange(world, parties.orders, parties.user_token)
    assert_refused(refused, "revoked")


def assert_refused(response: httpx.Response, reason: str) -> None:
    """A subject or actor token refused (RFC 8693 section 2.2.2: invalid_request), saying why."""
    assert_oauth_error(response, 400, "invalid_request")
    assert reason in response.json()["error_description"], response.json()


def test_expired_foreign_and_garbage_subject_tokens_are_refused(parties: Parties) -> None:
    world = parties.world
    foreign_key = ECKey.generate_key("P-256", private=True)
    subject = claims_of(parties.user_token)
    foreign = jwt.encode(
        {"alg": "ES256", "kid": "foreign", "typ": "at+jwt"}, subject, foreign_key, ["ES256"]
    )
    not_ours = sign_as_provider(world, {**subject, "iss": "https://other.example"}, "at+jwt")
    for token in (foreign, not_ours, "garbage", "a.b.c", "x" * 9000):
        assert_refused(exchange(world, parties.orders, token), "subject token")
    world.clock.advance(world.server.settings.access_token_ttl + 1)
    expired = exchange(world, parties.orders, parties.user_token)
    assert_refused(expired, "expired")


def test_a_clients_own_token_is_no_subject(parties: Parties) -> None:
    world = parties.world
    machine = own_token(world, parties.orders)
    assert_refused(exchange(world, parties.orders, machine), "names a client")


def test_bad_parameters_are_invalid_request(parties: Parties) -> None:
    world = parties.world
    token = parties.user_token
    cases: list[httpx.Response] = [
        post_token(world, parties.orders, grant_type=TOKEN_EXCHANGE, subject_token_type=ACCESS),
        post_token(world, parties.orders, grant_type=TOKEN_EXCHANGE, subject_token=token),
        exchange(world, parties.orders, token, "urn:ietf:params:oauth:token-type:saml2"),
        exchange(
            world,
            parties.orders,
            token,
            requested_token_type="urn:ietf:params:oauth:token-type:refresh_token",
        ),
        exchange(world, parties.orders, token, actor_token_type=ACCESS),
        exchange(world, parties.orders, token, actor_token=token),
    ]
    for response in cases:
        assert_oauth_error(response, 400, "invalid_request")
    asked = exchange(world, parties.orders, token, requested_token_type=ACCESS)
    assert ok(asked)["issued_token_type"] == ACCESS
    # A token of one kind presented as the other is refused.
    assert_refused(exchange(world, parties.orders, token, ID_TOKEN), "not an ID token")


def test_a_client_without_the_grant_is_unauthorized(parties: Parties) -> None:
    world = parties.world
    refused = exchange(world, parties.front, parties.user_token)
    assert_oauth_error(refused, 400, "unauthorized_client")


def test_the_subject_client_limit(parties: Parties) -> None:
    world = parties.world
    refused = exchange(world, parties.billing, parties.user_token)
    assert_refused(refused, "may not exchange tokens issued to that client")
    via_orders = ok(exchange(world, parties.orders, parties.user_token))["access_token"]
    assert ok(exchange(world, parties.billing, via_orders))["access_token"]


def test_an_id_token_subject(parties: Parties) -> None:
    world = parties.world
    request = world.request()
    with world.browser() as browser:
        code = sign_in(browser, request)["code"]
    tokens = ok(redeem(world.url, request, code))
    id_token = tokens["id_token"]
    for token_type in (ID_TOKEN, JWT):
        body = ok(exchange(world, parties.orders, id_token, token_type))
        claims = claims_of(body["access_token"])
        assert claims["sub"] == world.user_id
        assert claims["sid"] == claims_of(id_token)["sid"]
        assert body["scope"] == "openid read write"
    assert_refused(exchange(world, parties.orders, id_token, ACCESS), "not an access token")
    # The web client is not orders: billing refuses its tokens.
    billing = exchange(world, parties.billing, id_token, ID_TOKEN)
    assert_refused(billing, "may not exchange tokens issued to that client")
    world.clock.advance(world.server.settings.id_token_ttl + 1)
    expired = exchange(world, parties.orders, id_token, ID_TOKEN)
    assert_refused(expired, "expired")


def test_a_token_exchanged_from_an_id_token_ends_with_its_session(parties: Parties) -> None:
    world = parties.world
    request = world.request()
    with world.browser() as browser:
        code = sign_in(browser, request)["code"]
    id_token = ok(redeem(world.url, request, code))["id_token"]
    exchanged = ok(exchange(world, parties.orders, id_token, ID_TOKEN))["access_token"]
    assert introspect(world, parties.orders, exchanged)["active"] is True
    sid = claims_of(id_token)["sid"]
    now = world.clock()
    with_store(
        world.server.settings.database_url,
        lambda s: s.revoke_session_refresh_tokens(sid, now),
    )
    assert introspect(world, parties.orders, exchanged) == {"active": False}
    refused = exchange(world, parties.orders, id_token, ID_TOKEN)
    assert_refused(refused, "revoked")


def test_a_dpop_proof_binds_the_exchanged_token(parties: Parties) -> None:
    world = parties.world
    key = DpopKey()
    response = httpx.post(
        f"{world.url}/token",
        data={
            "grant_type": TOKEN_EXCHANGE,
            "subject_token": parties.user_token,
            "subject_token_type": ACCESS,
        },
        headers={
            **basic(*parties.orders),
            "DPoP": key.proof("POST", f"{world.server.settings.issuer}/token"),
        },
        timeout=30,
    )
    body = ok(response)
    assert body["token_type"] == "DPoP"
    assert claims_of(body["access_token"])["cnf"] == {"jkt": key.jkt}


def test_registration_rules() -> None:
    now = time.time()
    with pytest.raises(InvalidClientMetadata):
        build_client(ClientRequest(name="spa", public=True, grant_types=[TOKEN_EXCHANGE]), now)
    with pytest.raises(InvalidClientMetadata):
        build_client(ClientRequest(name="x", grant_types=[TOKEN_EXCHANGE], scope="idp:admin"), now)
    record, _ = build_client(
        ClientRequest(
            name="svc",
            grant_types=[TOKEN_EXCHANGE],
            token_exchange_subject_clients=["a", "b", "a"],
        ),
        now,
    )
    assert record.token_exchange_subject_clients == ("a", "b")
