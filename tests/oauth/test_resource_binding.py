"""Resource indicators (RFC 8707) and DPoP key binding of the code (RFC 9449 section 10)
asked at /authorize and /par, carried into the code and its tokens; over a real server on
both stores.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from idp.config import Settings
from idp.oauth.authorization import AuthorizationRequest
from tests.support.dpop import DpopKey, claims_of
from tests.support.server import register_client
from tests.support.sso import (
    PASSWORD,
    WEB_CB,
    AuthorizeParams,
    World,
    query_of,
    running_world,
    submit_login,
    verify_jwt,
)
from tests.support.tokens import assert_oauth_error

API_A = "https://a.api.example"
API_B = "https://b.api.example/v1"
API_C = "urn:example:api:c"
"""Registered for the client but never asked for at authorization."""

Params = dict[str, str | list[str]]


@pytest.fixture
def app(world: World) -> str:
    """A public client with three registered audiences and refresh tokens."""
    client_id, _ = register_client(
        world.server.settings,
        "resource-app",
        public=True,
        redirect_uris=[WEB_CB],
        grant_types=["authorization_code", "refresh_token"],
        audiences=[API_A, API_B, API_C],
    )
    return client_id


def authorize(world: World, request: AuthorizeParams, extra: Params) -> httpx.Response:
    """GET /authorize with the request's parameters and ``extra`` (a list value repeats)."""
    query = urlencode({**request.params(), **extra}, doseq=True)
    with world.browser() as browser:
        return browser.get(f"/authorize?{query}")


def signed_in(world: World, path: str) -> dict[str, str]:
    """Follow ``path`` (an /authorize URL) to the login page, sign in, return the answer."""
    with world.browser() as browser:
        page = browser.get(path)
        assert page.status_code == 200, page.text
        done = submit_login(browser, page, "alice", PASSWORD)
    assert done.status_code == 303, done.text
    location = done.headers["location"]
    assert location.startswith(WEB_CB + "?")
    return query_of(location)


def code_for(world: World, request: AuthorizeParams, extra: Params) -> str:
    query = urlencode({**request.params(), **extra}, doseq=True)
    return signed_in(world, f"/authorize?{query}")["code"]


def token_url(world: World) -> str:
    return f"{world.server.settings.issuer}/token"


def redeem(
    world: World,
    request: AuthorizeParams,
    code: str,
    *,
    resources: tuple[str, ...] = (),
    proof: str | None = None,
) -> httpx.Response:
    form: Params = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": request.redirect_uri,
        "client_id": request.client_id,
        "code_verifier": request.verifier,
        "resource": list(resources),
    }
    headers = {"DPoP": proof} if proof else {}
    return httpx.post(f"{world.url}/token", data=form, headers=headers, timeout=30)


def refresh(
    world: World, client_id: str, token: str, resources: tuple[str, ...] = ()
) -> httpx.Response:
    form: Params = {
        "grant_type": "refresh_token",
        "refresh_token": token,
        "client_id": client_id,
        "resource": list(resources),
    }
    return httpx.post(f"{world.url}/token", data=form, timeout=30)


def ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def audience(world: World, body: dict[str, Any]) -> Any:
    """The ``aud`` of the answer's access token, its signature verified."""
    return verify_jwt(world.url, body["access_token"])[1]["aud"]


def push(
    world: World, request: AuthorizeParams, extra: Params, headers: dict[str, str] | None = None
) -> httpx.Response:
    data: Params = {**request.params(), **extra}
    return httpx.post(f"{world.url}/par", data=data, headers=headers or {}, timeout=30)


def pushed_code(world: World, request: AuthorizeParams, answer: httpx.Response) -> str:
    assert answer.status_code == 201, answer.text
    query = urlencode({"client_id": request.client_id, "request_uri": answer.json()["request_uri"]})
    return signed_in(world, f"/authorize?{query}")["code"]


def test_the_request_round_trips_its_resources_and_key() -> None:
    """What the login form seals and a push stores comes back whole."""
    request = AuthorizationRequest(
        "c", WEB_CB, ("openid",), None, None, None, None, (), None, None,
        resources=(API_A, API_B), dpop_jkt="x" * 43,
    )  # fmt: skip
    assert AuthorizationRequest.from_document(request.to_document()) == request
    document = request.to_document()
    del document["resources"], document["dpop_jkt"]
    older = AuthorizationRequest.from_document(document)
    assert older.resources == () and older.dpop_jkt is None


def test_resources_asked_at_authorize_are_the_audience_and_refresh_keeps_them(
    world: World, app: str
) -> None:
    """Two resources (the parameter repeated) become the access token's ``aud``; every
    refresh keeps them, may narrow them, and is refused one outside them (the refresh
    token stays usable)."""
    request = AuthorizeParams(app, WEB_CB, scope="openid")
    code = code_for(world, request, {"resource": [API_A, API_B]})
    body = ok(redeem(world, request, code))
    assert audience(world, body) == [API_A, API_B]

    renewed = ok(refresh(world, app, body["refresh_token"]))
    assert audience(world, renewed) == [API_A, API_B]
    wider = refresh(world, app, renewed["refresh_token"], (API_C,))
    assert_oauth_error(wider, 400, "invalid_target")
    narrowed = ok(refresh(world, app, renewed["refresh_token"], (API_B,)))
    assert audience(world, narrowed) == API_B
    again = ok(refresh(world, app, narrowed["refresh_token"]))
    assert audience(world, again) == [API_A, API_B]


def test_the_token_request_may_narrow_the_resources_but_not_widen_them(
    world: World, app: str
) -> None:
    """RFC 8707 section 2.2: a ``resource`` at code redemption picks among those granted;
    one the client has registered but did not ask for at authorization is invalid_target."""
    request = AuthorizeParams(app, WEB_CB, scope="openid")
    code = code_for(world, request, {"resource": [API_A, API_B]})
    assert audience(world, ok(redeem(world, request, code, resources=(API_B,)))) == API_B

    request = AuthorizeParams(app, WEB_CB, scope="openid")
    code = code_for(world, request, {"resource": [API_A, API_B]})
    assert_oauth_error(
        redeem(world, request, code, resources=(API_A, API_C)), 400, "invalid_target"
    )

    # Without resources at authorization, /token may still name any registered audience.
    request = AuthorizeParams(app, WEB_CB, scope="openid")
    code = code_for(world, request, {})
    assert audience(world, ok(redeem(world, request, code, resources=(API_C,)))) == API_C


@pytest.mark.parametrize(
    "resource",
    ["https://evil.example", "https://a.api.example#frag", "not-absolute", f"{API_A}/other"],
)
def test_an_unregistered_or_malformed_resource_is_an_invalid_target_redirect(
    world: World, app: str, resource: str
) -> None:
    """No login page and no code: the error goes to the client with its state."""
    request = AuthorizeParams(app, WEB_CB)
    answer = authorize(world, request, {"resource": [API_A, resource]})
    assert answer.status_code == 302, answer.text
    location = answer.headers["location"]
    assert location.startswith(WEB_CB + "?")
    params = query_of(location)
    assert params["error"] == "invalid_target"
    assert params["state"] == request.state
    assert "code" not in params


def test_a_push_carries_resources_and_refuses_unregistered_ones(world: World, app: str) -> None:
    """Resources pushed to /par reach the code's token; an unregistered one is answered as
    JSON invalid_target, with nothing stored."""
    request = AuthorizeParams(app, WEB_CB, scope="openid")
    code = pushed_code(world, request, push(world, request, {"resource": [API_B, API_A]}))
    assert audience(world, ok(redeem(world, request, code))) == [API_B, API_A]

    refused = push(world, request, {"resource": [API_A, "https://evil.example"]})
    assert refused.status_code == 400
    assert refused.headers["content-type"].startswith("application/json")
    assert refused.json()["error"] == "invalid_target"
    assert "request_uri" not in refused.json()


def test_dpop_jkt_binds_the_code_to_a_key(world: World, app: str) -> None:
    """A code asked with ``dpop_jkt`` redeems only with a proof of that key; the access
    token is bound to it. Without a proof, or with another key: invalid_grant."""
    key = DpopKey()
    request = AuthorizeParams(app, WEB_CB, scope="openid")
    code = code_for(world, request, {"dpop_jkt": key.jkt})
    body = ok(redeem(world, request, code, proof=key.proof("POST", token_url(world))))
    assert body["token_type"] == "DPoP"
    assert claims_of(body["access_token"])["cnf"] == {"jkt": key.jkt}

    request = AuthorizeParams(app, WEB_CB, scope="openid")
    code = code_for(world, request, {"dpop_jkt": key.jkt})
    assert_oauth_error(redeem(world, request, code), 400, "invalid_grant")

    request = AuthorizeParams(app, WEB_CB, scope="openid")
    code = code_for(world, request, {"dpop_jkt": key.jkt})
    thief = DpopKey().proof("POST", token_url(world))
    assert_oauth_error(redeem(world, request, code, proof=thief), 400, "invalid_grant")


@pytest.mark.parametrize("jkt", ["short", "x" * 44, "+" * 43])
def test_a_malformed_dpop_jkt_is_an_invalid_request_redirect(
    world: World, app: str, jkt: str
) -> None:
    request = AuthorizeParams(app, WEB_CB)
    answer = authorize(world, request, {"dpop_jkt": jkt})
    assert answer.status_code == 302, answer.text
    params = query_of(answer.headers["location"])
    assert params["error"] == "invalid_request" and "code" not in params


def test_a_push_with_a_dpop_proof_binds_the_code(world: World, app: str) -> None:
    """RFC 9449 section 10.1: the proof sent with the push binds the code to its key; a
    ``dpop_jkt`` beside it must name the same key; a bad proof refuses the push."""
    key = DpopKey()
    par_url = f"{world.server.settings.issuer}/par"

    request = AuthorizeParams(app, WEB_CB, scope="openid")
    answer = push(world, request, {}, {"DPoP": key.proof("POST", par_url)})
    code = pushed_code(world, request, answer)
    assert_oauth_error(redeem(world, request, code), 400, "invalid_grant")

    request = AuthorizeParams(app, WEB_CB, scope="openid")
    answer = push(world, request, {"dpop_jkt": key.jkt}, {"DPoP": key.proof("POST", par_url)})
    code = pushed_code(world, request, answer)
    body = ok(redeem(world, request, code, proof=key.proof("POST", token_url(world))))
    assert claims_of(body["access_token"])["cnf"] == {"jkt": key.jkt}

    other = DpopKey()
    mismatch = push(world, request, {"dpop_jkt": other.jkt}, {"DPoP": key.proof("POST", par_url)})
    assert_oauth_error(mismatch, 400, "invalid_dpop_proof")
    wrong_target = push(world, request, {}, {"DPoP": key.proof("POST", token_url(world))})
    assert_oauth_error(wrong_target, 400, "invalid_dpop_proof")

    # dpop_jkt alone, pushed without a proof, binds as at /authorize.
    request = AuthorizeParams(app, WEB_CB, scope="openid")
    code = pushed_code(world, request, push(world, request, {"dpop_jkt": other.jkt}))
    thief = key.proof("POST", token_url(world))
    assert_oauth_error(redeem(world, request, code, proof=thief), 400, "invalid_grant")


@pytest.fixture
def nonce_world(settings: Settings, port: int) -> Iterator[World]:
    """A provider that requires server nonces in DPoP proofs."""
    yield from running_world(replace(settings, dpop_require_nonce=True), port)


def test_a_push_proof_needs_the_server_nonce_when_nonces_are_required(
    nonce_world: World,
) -> None:
    """RFC 9449 section 8 at /par as at /token: use_dpop_nonce with a nonce to retry with;
    the successful answer carries the next one."""
    world = nonce_world
    key = DpopKey()
    par_url = f"{world.server.settings.issuer}/par"
    request = world.request()
    first = push(world, request, {}, {"DPoP": key.proof("POST", par_url)})
    assert_oauth_error(first, 400, "use_dpop_nonce")
    nonce = first.headers["dpop-nonce"]
    answer = push(world, request, {}, {"DPoP": key.proof("POST", par_url, nonce=nonce)})
    assert answer.status_code == 201, answer.text
    assert answer.headers["dpop-nonce"]
