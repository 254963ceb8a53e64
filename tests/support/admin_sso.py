"""Helpers for the admin tests of consents and sessions: a browser that signs in (and
consents) at a running provider, and waiting for back-channel logout tokens to arrive."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx

from tests.support.backchannel import Receiver
from tests.support.server import register_client
from tests.support.sso import PASSWORD, AuthorizeParams, World, hidden_inputs, query_of, redeem

APP_CB = "http://127.0.0.1:8765/notes/cb"
PORTAL_CB = "http://127.0.0.1:8765/portal/cb"


def _form(page: httpx.Response, **fields: str) -> dict[str, str]:
    found = hidden_inputs(page.text)
    return {"request": found["request"], "csrf": found["csrf"], **fields}


def consenting_app(world: World, name: str = "notes") -> str:
    """A public app that asks for consent and gets refresh tokens; its client_id."""
    client_id, _ = register_client(
        world.server.settings,
        name,
        public=True,
        redirect_uris=[APP_CB],
        grant_types=["authorization_code", "refresh_token"],
        require_consent=True,
    )
    return client_id


def consent_and_tokens(world: World, client_id: str, username: str = "alice") -> dict[str, Any]:
    """Sign in to the app in a new browser, allow it, and redeem the code: the token answer."""
    with world.browser() as browser:
        request = AuthorizeParams(client_id, APP_CB)
        page = browser.get(request.url())
        asked = browser.post(
            "/login", data={**_form(page), "username": username, "password": PASSWORD}
        )
        assert asked.status_code == 200 and 'name="decision"' in asked.text, asked.text
        allowed = browser.post("/consent", data={**_form(asked), "decision": "allow"})
        assert allowed.status_code == 303, allowed.text
        answer = redeem(world.url, request, query_of(allowed.headers["location"])["code"])
        assert answer.status_code == 200, answer.text
        tokens: dict[str, Any] = answer.json()
        return tokens


def refresh(world: World, client_id: str, refresh_token: str) -> httpx.Response:
    """Use a refresh token at /token as the public client."""
    form = {"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": client_id}
    return httpx.post(f"{world.url}/token", data=form, timeout=30)


def backchannel_app(world: World, receiver_url: str, name: str = "portal") -> str:
    """A public app that takes back-channel logout at ``receiver_url``; its client_id."""
    client_id, _ = register_client(
        world.server.settings,
        name,
        public=True,
        redirect_uris=[PORTAL_CB],
        grant_types=["authorization_code"],
        backchannel_logout_uri=receiver_url,
    )
    return client_id


def sign_in_to(browser: httpx.Client, client_id: str, username: str = "alice") -> None:
    """Sign in to the app in ``browser`` (so its session has the app among its clients)."""
    request = AuthorizeParams(client_id, PORTAL_CB)
    page = browser.get(request.url())
    assert 'name="password"' in page.text, page.text
    done = browser.post("/login", data={**_form(page), "username": username, "password": PASSWORD})
    assert done.status_code == 303 and "code=" in done.headers["location"], done.text


def signed_in(browser: httpx.Client, client_id: str) -> bool:
    """Whether the browser's session cookie still signs it in: a code at once, no login form."""
    answer = browser.get(AuthorizeParams(client_id, PORTAL_CB).url())
    if answer.status_code == 303:
        return "code=" in answer.headers["location"]
    assert answer.status_code == 200 and 'name="password"' in answer.text, answer.text
    return False


def wait_until(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    """Poll ``condition`` until it holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the condition never held"
        time.sleep(0.02)


def logout_sids(receiver: Receiver) -> list[str]:
    """The sids of the logout tokens a receiver accepted, in order (none rejected)."""
    assert receiver.rejected == []
    return [str(claims["sid"]) for claims in receiver.accepted]
