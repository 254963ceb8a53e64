"""Pushed authorization requests (RFC 9126) over a real server, on both stores."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from urllib.parse import urlencode

import httpx
import pytest

from idp.config import Settings
from idp.oauth.authorization import AuthorizationRequest
from idp.oauth.par import REQUEST_URI_PREFIX, pushed_record, request_uri_hash
from idp.store.base import Store
from tests.support.cli import Idp
from tests.support.server import basic, register_client, with_store
from tests.support.sso import (
    CONSENT_CB,
    PASSWORD,
    WEB_CB,
    AuthorizeParams,
    World,
    query_of,
    redeem,
    running_world,
    submit_login,
    verify_jwt,
)


def push(world: World, params: dict[str, str], **kwargs: object) -> httpx.Response:
    return httpx.post(f"{world.url}/par", data=params, timeout=30, **kwargs)  # type: ignore[arg-type]


def authorize_url(client_id: str, request_uri: str, **extra: str) -> str:
    return "/authorize?" + urlencode({"client_id": client_id, "request_uri": request_uri, **extra})


def pushed_uri(world: World, request: AuthorizeParams) -> str:
    answer = push(world, request.params())
    assert answer.status_code == 201, answer.text
    return str(answer.json()["request_uri"])


def test_pushed_request_signs_in_with_only_client_id_and_request_uri(world: World) -> None:
    """The push answers 201 with a fresh URN and 60 s; /authorize with client_id and
    request_uri alone signs in and redirects with the pushed state; the code redeems and
    the ID token carries the pushed nonce. Parameters beside the two are ignored."""
    request = world.request()
    answer = push(world, request.params())
    assert answer.status_code == 201, answer.text
    assert answer.headers["cache-control"] == "no-store"
    body = answer.json()
    assert set(body) == {"request_uri", "expires_in"}
    assert body["request_uri"].startswith(REQUEST_URI_PREFIX)
    assert len(body["request_uri"]) > len(REQUEST_URI_PREFIX) + 40
    assert body["expires_in"] == 60
    assert pushed_uri(world, request) != body["request_uri"]

    with world.browser() as browser:
        url = authorize_url(world.web, body["request_uri"], state="not-the-pushed-one")
        page = browser.get(url)
        assert page.status_code == 200, page.text
        assert 'name="password"' in page.text
        done = submit_login(browser, page, "alice", PASSWORD)
    assert done.status_code == 303, done.text
    location = done.headers["location"]
    assert location.startswith(WEB_CB + "?")
    answer_params = query_of(location)
    assert answer_params["state"] == request.state
    tokens = redeem(world.url, request, answer_params["code"])
    assert tokens.status_code == 200, tokens.text
    _, claims = verify_jwt(world.url, tokens.json()["id_token"])
    assert claims["nonce"] == request.nonce


def test_request_uri_is_single_use_and_short_lived(world: World) -> None:
    """A used request_uri, an expired one, an unknown one, or one pushed by another client
    gets an error page, never a redirect."""
    used = pushed_uri(world, world.request())
    with world.browser() as browser:
        assert browser.get(authorize_url(world.web, used)).status_code == 200
        again = browser.get(authorize_url(world.web, used))
        assert again.status_code == 400
        assert "already used or expired" in again.text

        expiring = pushed_uri(world, world.request())
        world.clock.advance(61)
        late = browser.get(authorize_url(world.web, expiring))
        assert late.status_code == 400 and "location" not in late.headers

        unknown = browser.get(authorize_url(world.web, REQUEST_URI_PREFIX + "x" * 43))
        assert unknown.status_code == 400
        not_ours = browser.get(authorize_url(world.web, "https://evil.example/request"))
        assert not_ours.status_code == 400

        theirs = pushed_uri(world, world.request())
        other = browser.get(authorize_url(world.two, theirs))
        assert other.status_code == 400
        assert "another client" in other.text


def test_push_errors_are_json_and_nothing_is_redirected(world: World) -> None:
    """Every check /authorize makes runs at push time, answered as JSON (section 2.3)."""
    good = world.request().params()

    def error_of(params: dict[str, str], **kwargs: object) -> tuple[int, str]:
        answer = push(world, params, **kwargs)
        assert "location" not in answer.headers
        assert answer.headers["content-type"].startswith("application/json")
        return answer.status_code, str(answer.json()["error"])

    assert error_of({**good, "redirect_uri": "http://127.0.0.1:8765/elsewhere"}) == (
        400,
        "invalid_request",
    )
    assert error_of({**good, "scope": "openid not-allowed"}) == (400, "invalid_scope")
    assert error_of({**good, "response_type": "token"}) == (400, "unsupported_response_type")
    no_pkce = {k: v for k, v in good.items() if not k.startswith("code_challenge")}
    assert error_of(no_pkce) == (400, "invalid_request")
    assert error_of({**good, "request_uri": REQUEST_URI_PREFIX + "x"}) == (400, "invalid_request")
    assert error_of({**good, "client_id": "nobody"}) == (401, "invalid_client")
    confidential = world.request(world.consenting).params()
    wrong = basic(world.consenting, "wrong-secret")
    assert error_of(confidential, headers=wrong) == (401, "invalid_client")
    assert error_of({**confidential, "client_id": world.consenting}) == (401, "invalid_client")
    other = {**confidential, "client_id": world.web}
    assert error_of(other, headers=basic(world.consenting, world.consenting_secret))[0] in (
        400,
        401,
    )


def test_confidential_client_pushes_with_its_registered_method(world: World) -> None:
    """A confidential client authenticates its push as at /token, with its registered
    method only (client_secret_basic here: the same secret in the form is refused)."""
    request = world.request(world.consenting)
    headers = basic(world.consenting, world.consenting_secret)
    answer = push(world, request.params(), headers=headers)
    assert answer.status_code == 201, answer.text
    posted = push(world, {**request.params(), "client_secret": world.consenting_secret})
    assert posted.status_code == 401 and posted.json()["error"] == "invalid_client"
    with world.browser() as browser:
        page = browser.get(authorize_url(world.consenting, answer.json()["request_uri"]))
        assert page.status_code == 200, page.text
        assert 'name="password"' in page.text


def test_client_registered_to_require_par(world: World, settings: Settings) -> None:
    """A client with require_par is refused at /authorize without a push (an error
    redirect to its registered URI); its pushed requests work."""
    strict, _ = register_client(
        settings,
        "strict",
        public=True,
        redirect_uris=[CONSENT_CB],
        grant_types=["authorization_code"],
        require_par=True,
    )
    request = world.request(strict)
    with world.browser() as browser:
        direct = browser.get(request.url())
        assert direct.status_code == 302
        refused = query_of(direct.headers["location"])
        assert refused["error"] == "invalid_request"
        assert refused["state"] == request.state
        assert "push" in refused["error_description"]
        page = browser.get(authorize_url(strict, pushed_uri(world, request)))
        assert page.status_code == 200 and 'name="password"' in page.text
        # Other clients are unaffected.
        assert browser.get(world.request().url()).status_code == 200


def test_server_requiring_par_says_so_and_refuses_direct_requests(
    settings: Settings, port: int
) -> None:
    """IDP_REQUIRE_PAR: discovery says so and no client may skip the push."""
    for world in running_world(replace(settings, require_par=True), port):
        metadata = httpx.get(f"{world.url}/.well-known/openid-configuration", timeout=10).json()
        assert metadata["pushed_authorization_request_endpoint"] == f"{world.url}/par"
        assert metadata["require_pushed_authorization_requests"] is True
        with world.browser() as browser:
            direct = browser.get(world.request().url())
            assert direct.status_code == 302
            assert query_of(direct.headers["location"])["error"] == "invalid_request"
            pushed = browser.get(authorize_url(world.web, pushed_uri(world, world.request())))
            assert pushed.status_code == 200


def test_discovery_advertises_par_not_required_by_default(world: World) -> None:
    metadata = httpx.get(f"{world.url}/.well-known/openid-configuration", timeout=10).json()
    assert metadata["pushed_authorization_request_endpoint"] == f"{world.url}/par"
    assert metadata["require_pushed_authorization_requests"] is False


def test_store_gives_a_pushed_request_to_one_caller_and_collects_expired(
    world: World, settings: Settings
) -> None:
    """Of concurrent consumers exactly one gets the request; expired rows are collected."""
    request = AuthorizationRequest(
        client_id=world.web,
        redirect_uri=WEB_CB,
        scope=("openid",),
        state=None,
        nonce=None,
        code_challenge="c" * 43,
        code_challenge_method="S256",
        prompt=(),
        max_age=None,
        login_hint=None,
    )
    now = time.time()

    async def work(store: Store) -> tuple[list[bool], int, bool]:
        uri = REQUEST_URI_PREFIX + "concurrent"
        await store.create_pushed_request(pushed_record(request, uri, now))
        results = await asyncio.gather(
            *(store.consume_pushed_request(request_uri_hash(uri), now) for _ in range(8))
        )
        old = REQUEST_URI_PREFIX + "old"
        await store.create_pushed_request(pushed_record(request, old, now - 120))
        collected = await store.delete_expired_pushed_requests(now, 100)
        gone = await store.consume_pushed_request(request_uri_hash(old), now - 100) is None
        return [r is not None for r in results], collected, gone

    got, collected, gone = with_store(settings.database_url, work)
    assert got.count(True) == 1
    assert collected >= 1 and gone


@pytest.mark.usefixtures("database_url")
def test_cli_sets_and_clears_require_par(migrated: Idp) -> None:
    created = migrated(
        "clients", "create", "--name", "Strict", "--public", "--json",
        "--redirect-uri", "https://spa.example/cb", "--require-par",
    ).json()  # fmt: skip
    assert created["require_par"] is True
    client_id = created["client_id"]
    cleared = migrated("clients", "update", client_id, "--no-require-par", "--json").json()
    assert cleared["require_par"] is False
    kept = migrated("clients", "update", client_id, "--name", "Strict 2", "--json").json()
    assert kept["require_par"] is False
    assert migrated("clients", "update", client_id, "--require-par", "--json").json()["require_par"]
