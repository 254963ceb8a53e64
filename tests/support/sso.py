"""Helpers for single sign-on tests: a movable clock, users, and a browser that signs in."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from html import unescape
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
from joserfc import jwt
from joserfc.jwk import KeySet

from idp.admin.context import AdminContext
from idp.admin.users import create_user
from idp.config import Settings
from idp.keyring.material import unseal
from idp.store.base import Store
from tests.support.server import LiveServer, register_client, start_server, with_store

PASSWORD = "correct horse battery staple"
_INPUT = re.compile(r'<input[^>]*name="(?P<name>[^"]+)"[^>]*value="(?P<value>[^"]*)"')


@dataclass
class MovableClock:
    """A clock that tests move forward instead of sleeping."""

    offset: float = 0.0
    frozen_at: float | None = None

    def __call__(self) -> float:
        import time

        base = time.time() if self.frozen_at is None else self.frozen_at
        return base + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds

    def freeze(self) -> None:
        """Stop the clock where it is, so only ``advance`` moves it (however slow the machine)."""
        import time

        self.frozen_at = time.time()


def add_user(
    settings: Settings,
    username: str = "alice",
    password: str = PASSWORD,
    email: str | None = "alice@example.org",
    name: str | None = "Alice Liddell",
) -> str:
    """Create a user in the service's store; return the user id."""

    async def work(store: Store) -> str:
        ctx = AdminContext(store, settings)
        user = await create_user(ctx, username, password, email=email, name=name)
        return user.id

    return with_store(settings.database_url, work)


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def hidden_inputs(html: str) -> dict[str, str]:
    """The named inputs with a value in a page (hidden request and csrf fields)."""
    return {m["name"]: unescape(m["value"]) for m in _INPUT.finditer(html)}


def query_of(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


@dataclass
class AuthorizeParams:
    """An authorization request with PKCE; ``params()`` gives the query parameters."""

    client_id: str
    redirect_uri: str
    scope: str = "openid profile email"
    state: str = field(default_factory=lambda: secrets.token_urlsafe(8))
    nonce: str = field(default_factory=lambda: secrets.token_urlsafe(8))
    verifier: str = ""
    challenge: str = ""
    extra: dict[str, str] = field(default_factory=dict)
    pkce: bool = True

    def __post_init__(self) -> None:
        if not self.verifier:
            self.verifier, self.challenge = pkce_pair()

    def params(self) -> dict[str, str]:
        pkce = {"code_challenge": self.challenge, "code_challenge_method": "S256"}
        return {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": self.redirect_uri,
            "scope": self.scope,
            "state": self.state,
            "nonce": self.nonce,
            **(pkce if self.pkce else {}),
            **self.extra,
        }

    def url(self) -> str:
        return "/authorize?" + urlencode(self.params())


def submit_login(
    browser: httpx.Client, page: httpx.Response, username: str, password: str
) -> httpx.Response:
    """Post the login form shown in ``page``."""
    fields = hidden_inputs(page.text)
    return browser.post(
        "/login",
        data={
            "request": fields["request"],
            "csrf": fields["csrf"],
            "username": username,
            "password": password,
        },
    )


def sign_in(
    browser: httpx.Client,
    request: AuthorizeParams,
    username: str = "alice",
    password: str = PASSWORD,
) -> dict[str, str]:
    """Start at /authorize, sign in on the login page, return the redirect's parameters."""
    page = browser.get(request.url())
    assert page.status_code == 200, page.text
    assert 'name="password"' in page.text
    done = submit_login(browser, page, username, password)
    assert done.status_code == 303, done.text
    location = done.headers["location"]
    assert location.startswith(request.redirect_uri + "?")
    return query_of(location)


def redeem(
    server_url: str, request: AuthorizeParams, code: str, **overrides: str
) -> httpx.Response:
    """Exchange a code at /token as a public client."""
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": request.redirect_uri,
        "client_id": request.client_id,
        "code_verifier": request.verifier,
        **overrides,
    }
    return httpx.post(f"{server_url}/token", data=form, timeout=30)


def verify_jwt(server_url: str, token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Verify a token against the published JWKS with joserfc; return header and claims."""
    keys = KeySet.import_key_set(httpx.get(f"{server_url}/jwks.json", timeout=10).json())
    decoded = jwt.decode(token, keys, algorithms=["RS256", "ES256"])
    return dict(decoded.header), decoded.claims


WEB_CB = "http://127.0.0.1:8765/cb"
TWO_CB = "http://localhost:8765/two/cb"
CONSENT_CB = "http://127.0.0.1:8765/consent/cb"
BYE = "http://127.0.0.1:8765/bye"


@dataclass
class World:
    """A running provider with a user and two public clients."""

    server: LiveServer
    clock: MovableClock
    user_id: str
    web: str
    two: str
    consenting: str
    consenting_secret: str

    @property
    def url(self) -> str:
        return self.server.url

    def browser(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, follow_redirects=False, timeout=30)

    def request(self, client_id: str | None = None, **extra: str) -> AuthorizeParams:
        client = client_id or self.web
        redirect_uri = {self.web: WEB_CB, self.two: TWO_CB}.get(client, CONSENT_CB)
        return AuthorizeParams(client, redirect_uri, extra=extra)


def running_world(settings: Settings, port: int) -> Iterator[World]:
    """Start a provider with a user and two public clients; stop it afterwards.

    Its back-channel receivers listen on 127.0.0.1, which only a development setup allows.
    """
    settings = replace(settings, allow_private_backchannel=True)
    clock = MovableClock()
    server = start_server(settings, port, clock)
    try:
        user_id = add_user(settings)
        web, _ = register_client(
            settings,
            "web",
            public=True,
            redirect_uris=[WEB_CB],
            post_logout_redirect_uris=[BYE],
            grant_types=["authorization_code"],
        )
        two, _ = register_client(
            settings, "two", public=True, redirect_uris=[TWO_CB], grant_types=["authorization_code"]
        )
        consenting, secret = register_client(
            settings,
            "consenting",
            redirect_uris=[CONSENT_CB],
            grant_types=["authorization_code"],
            require_consent=True,
            backchannel_logout_uri="http://127.0.0.1:8765/backchannel",
        )
        yield World(server, clock, user_id, web, two, consenting, secret)
    finally:
        server.stop()


def sign_as_provider(world: World, claims: dict[str, Any], typ: str | None = "JWT") -> str:
    """A JWT signed by the provider's own active ES256 key, with the header ``typ`` given.

    For tokens the provider would never issue in that shape: the key is unsealed from the
    store, so the signature is as good as the provider's own.
    """
    settings = world.server.settings
    records = with_store(settings.database_url, lambda store: store.list_keys())
    record = next(k for k in records if k.alg == "ES256" and k.state == "active")
    header = {"alg": "ES256", "kid": record.kid, **({"typ": typ} if typ else {})}
    key = unseal(record, settings.key_encryption_key)
    return jwt.encode(header, claims, key, algorithms=["ES256"])
