"""What both example web apps share: sign-in through the IdP, local sessions, back-channel logout.

An app signs users in with authlib's Starlette client (authorization code, PKCE S256, a
confidential client with ``client_secret_basic``), then keeps its own session: a signed,
HttpOnly, SameSite=Lax cookie that holds only a random local session id. The tokens stay on
the server, in :class:`LocalSessions`, next to a map from the IdP's ``sid`` to the local
sessions it started, so a back-channel logout token (OpenID Connect Back-Channel Logout 1.0)
ends exactly those sessions.
"""

from __future__ import annotations

import contextlib
import hmac
import logging
import os
import secrets
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from html import escape
from typing import Any
from urllib.parse import parse_qs

import httpx
from authlib.integrations.starlette_client import (  # type: ignore[import-untyped]
    OAuth,
    OAuthError,
)
from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

log = logging.getLogger("examples")

BACKCHANNEL_LOGOUT_EVENT = "http://schemas.openid.net/event/backchannel-logout"
LOGOUT_TOKEN_TYP = "logout+jwt"
ALGORITHMS = ("RS256", "ES256")
LEEWAY = 30
MAX_LOGOUT_TOKEN_AGE = 300
JWKS_REFETCH_COOLDOWN = 10.0


@dataclass(frozen=True)
class AppConfig:
    """One example app's settings: who it is, where it lives, and where the IdP is."""

    name: str
    base_url: str
    issuer: str
    client_id: str
    client_secret: str
    session_secret: str
    cookie_name: str
    api_url: str = ""
    api_audience: str = ""
    scope: str = "openid profile email"

    @property
    def https(self) -> bool:
        return self.base_url.startswith("https://")

    @classmethod
    def from_environ(
        cls, name: str, cookie_name: str, environ: Mapping[str, str] | None = None
    ) -> AppConfig:
        """Read ``EXAMPLE_*`` variables (see examples/README.md)."""
        env = os.environ if environ is None else environ
        return cls(
            name=name,
            base_url=env["EXAMPLE_BASE_URL"].rstrip("/"),
            issuer=env["EXAMPLE_ISSUER"].rstrip("/"),
            client_id=env["EXAMPLE_CLIENT_ID"],
            client_secret=env["EXAMPLE_CLIENT_SECRET"],
            session_secret=env.get("EXAMPLE_SESSION_SECRET") or secrets.token_urlsafe(32),
            cookie_name=cookie_name,
            api_url=env.get("EXAMPLE_API_URL", "").rstrip("/"),
            api_audience=env.get("EXAMPLE_API_AUDIENCE", ""),
            scope=env.get("EXAMPLE_SCOPE", "openid profile email"),
        )


@dataclass
class LocalSession:
    """What the app remembers about one signed-in browser (server side only)."""

    user: dict[str, Any]
    sid: str
    sub: str
    id_token: str
    access_token: str


@dataclass
class LocalSessions:
    """Local sessions by their random id, and the IdP ``sid`` -> local session ids map.

    In memory, so it holds for one app process; a real app keeps it in its own store.
    """

    by_id: dict[str, LocalSession] = field(default_factory=dict)
    by_sid: dict[str, set[str]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self, session: LocalSession) -> str:
        """Remember a new local session; return its id (for the cookie)."""
        local_id = secrets.token_urlsafe(32)
        with self._lock:
            self.by_id[local_id] = session
            self.by_sid.setdefault(session.sid, set()).add(local_id)
        return local_id

    def get(self, local_id: str | None) -> LocalSession | None:
        if not local_id:
            return None
        with self._lock:
            return self.by_id.get(local_id)

    def end(self, local_id: str) -> None:
        with self._lock:
            session = self.by_id.pop(local_id, None)
            if session is not None:
                self.by_sid.get(session.sid, set()).discard(local_id)

    def end_for(self, *, sid: str | None, sub: str | None) -> int:
        """End every local session of the IdP session ``sid`` (or, without one, of ``sub``)."""
        with self._lock:
            if sid:
                ids = self.by_sid.pop(sid, set())
            else:
                ids = {k for k, s in self.by_id.items() if s.sub == sub}
            for local_id in ids:
                session = self.by_id.pop(local_id, None)
                if session is not None and not sid:
                    self.by_sid.get(session.sid, set()).discard(local_id)
            return len(ids)


class LogoutTokenError(ValueError):
    """A logout token that must be refused (Back-Channel Logout 1.0 section 2.6)."""


class LogoutTokenVerifier:
    """Validates logout tokens against the IdP's JWKS (Back-Channel Logout 1.0 section 2.6).

    The keys come from the IdP's ``jwks_uri`` (found through discovery), are cached, and
    are fetched again for an unknown kid at most once per cooldown.
    """

    def __init__(self, issuer: str, client_id: str, http: httpx.AsyncClient) -> None:
        self.issuer = issuer
        self.client_id = client_id
        self._http = http
        self._keys: KeySet | None = None
        self._fetched_at = 0.0

    async def _fetch_keys(self) -> KeySet:
        discovery = await self._http.get(f"{self.issuer}/.well-known/openid-configuration")
        discovery.raise_for_status()
        jwks = await self._http.get(discovery.json()["jwks_uri"])
        jwks.raise_for_status()
        self._keys = KeySet.import_key_set(jwks.json())
        self._fetched_at = time.monotonic()
        return self._keys

    async def _key_set(self, kid: str) -> KeySet:
        keys = self._keys
        known = keys is not None and any(k.kid == kid for k in keys.keys)
        cooled = time.monotonic() - self._fetched_at > JWKS_REFETCH_COOLDOWN
        if keys is None or (not known and cooled):
            keys = await self._fetch_keys()
        return keys

    async def verify(self, token: str) -> dict[str, Any]:
        """The claims of a valid logout token; raises :class:`LogoutTokenError` otherwise."""
        if not token or len(token) > 8192:
            raise LogoutTokenError("missing or oversized logout_token")
        try:
            header = jws.extract_compact(token.encode()).headers()
        except (JoseError, ValueError) as exc:
            raise LogoutTokenError("malformed logout_token") from exc
        if str(header.get("typ", "")).lower() not in (LOGOUT_TOKEN_TYP, "application/logout+jwt"):
            raise LogoutTokenError("typ must be logout+jwt")
        if not isinstance(header.get("kid"), str) or header.get("alg") not in ALGORITHMS:
            raise LogoutTokenError("kid and an asymmetric alg are required")
        if {"jku", "x5u", "jwk", "x5c"} & set(header):
            raise LogoutTokenError("the token may not name its own key")
        try:
            keys = await self._key_set(header["kid"])
            decoded = jwt.decode(token, keys, algorithms=list(ALGORITHMS))
        except (JoseError, ValueError) as exc:
            raise LogoutTokenError("bad signature or unknown key") from exc
        except httpx.HTTPError as exc:
            raise LogoutTokenError("the IdP's keys could not be fetched") from exc
        return check_logout_claims(decoded.claims, self.issuer, self.client_id)


def check_logout_claims(claims: dict[str, Any], issuer: str, client_id: str) -> dict[str, Any]:
    """Apply the claim rules of Back-Channel Logout 1.0 section 2.6 (steps 3 to 6)."""
    now = time.time()
    if claims.get("iss") != issuer:
        raise LogoutTokenError("wrong iss")
    audience = claims.get("aud")
    audiences = audience if isinstance(audience, list) else [audience]
    if client_id not in audiences:
        raise LogoutTokenError("wrong aud")
    iat, exp = claims.get("iat"), claims.get("exp")
    if not isinstance(iat, int | float) or not isinstance(exp, int | float):
        raise LogoutTokenError("iat and exp are required")
    if iat > now + LEEWAY or iat < now - MAX_LOGOUT_TOKEN_AGE or exp < now - LEEWAY:
        raise LogoutTokenError("expired or not yet valid")
    events = claims.get("events")
    if not isinstance(events, dict) or not isinstance(events.get(BACKCHANNEL_LOGOUT_EVENT), dict):
        raise LogoutTokenError("the back-channel logout event is missing")
    if "nonce" in claims:
        raise LogoutTokenError("a logout token never carries a nonce")
    sid, sub = claims.get("sid"), claims.get("sub")
    if not (isinstance(sid, str) and sid) and not (isinstance(sub, str) and sub):
        raise LogoutTokenError("sid or sub is required")
    return claims


Page = Callable[[Request, "RelyingParty", LocalSession | None], Awaitable[Response]]


class RelyingParty:
    """The sign-in, sign-out and back-channel routes of one example app, around its pages."""

    def __init__(self, config: AppConfig) -> None:
        self.config = config
        self.sessions = LocalSessions()
        self.http = httpx.AsyncClient(timeout=10.0)
        self.oauth = OAuth()
        self.oauth.register(
            name="idp",
            client_id=config.client_id,
            client_secret=config.client_secret,
            server_metadata_url=f"{config.issuer}/.well-known/openid-configuration",
            client_kwargs={"scope": config.scope, "code_challenge_method": "S256"},
        )
        self.logout_tokens = LogoutTokenVerifier(config.issuer, config.client_id, self.http)

    @property
    def idp(self) -> Any:
        return self.oauth.idp

    def current(self, request: Request) -> LocalSession | None:
        """The local session of this browser, if it still exists (it may have been ended)."""
        session = self.sessions.get(request.session.get("local_id"))
        if session is None:
            request.session.pop("local_id", None)
        return session

    def csrf_token(self, request: Request) -> str:
        """A per-browser token for the app's own forms (the sign-out button)."""
        token = request.session.get("csrf")
        if not isinstance(token, str):
            token = request.session["csrf"] = secrets.token_urlsafe(24)
        return token

    def csrf_ok(self, request: Request, submitted: object) -> bool:
        expected = request.session.get("csrf")
        return (
            isinstance(expected, str)
            and isinstance(submitted, str)
            and hmac.compare_digest(expected.encode(), submitted.encode())
        )

    async def login(self, request: Request) -> Response:
        redirect_uri = f"{self.config.base_url}/callback"
        response: Response = await self.idp.authorize_redirect(request, redirect_uri)
        return response

    async def callback(self, request: Request) -> Response:
        try:
            # RFC 8707: the access token is for the API (its aud), if this app calls one.
            calls_api = self.config.api_url and self.config.api_audience
            extra = {"resource": self.config.api_audience} if calls_api else {}
            token = await self.idp.authorize_access_token(request, **extra)
        except (OAuthError, httpx.HTTPError) as exc:
            log.warning("%s: sign-in failed: %s: %s", self.config.name, type(exc).__name__, exc)
            return page(
                self.config, "Sign-in failed", "<p>Sign-in failed. <a href='/'>Home</a></p>", 400
            )
        claims = dict(token["userinfo"])
        local_id = self.sessions.start(
            LocalSession(
                user=claims,
                sid=str(claims.get("sid", "")),
                sub=str(claims["sub"]),
                id_token=token["id_token"],
                access_token=token["access_token"],
            )
        )
        request.session.clear()
        request.session["local_id"] = local_id
        return RedirectResponse("/", status_code=303)

    async def logout(self, request: Request) -> Response:
        """End the local session, then the IdP's (RP-Initiated Logout 1.0 section 2)."""
        form = await form_fields(request)
        if not self.csrf_ok(request, form.get("csrf")):
            return page(self.config, "Forbidden", "<p>Bad form token.</p>", 403)
        session = self.current(request)
        local_id = request.session.get("local_id")
        if local_id:
            self.sessions.end(local_id)
        request.session.clear()
        if session is None:
            return RedirectResponse("/", status_code=303)
        response: Response = await self.idp.logout_redirect(
            request,
            post_logout_redirect_uri=f"{self.config.base_url}/signed-out",
            id_token_hint=session.id_token,
            client_id=self.config.client_id,
            state=secrets.token_urlsafe(16),
        )
        return response

    async def signed_out(self, request: Request) -> Response:
        """Where the IdP sends the browser back; the ``state`` we sent must come back."""
        try:
            await self.idp.validate_logout_response(request)
        except OAuthError:
            body = "<p>The sign-out answer did not match a sign-out started here.</p>"
            return page(self.config, "Sign-out answer refused", body, 400)
        return page(
            self.config, "Signed out", "<p>You are signed out.</p><p><a href='/'>Home</a></p>"
        )

    async def backchannel_logout(self, request: Request) -> Response:
        """Back-Channel Logout 1.0 section 2.5/2.8: 200 when done, 400 for a bad token."""
        headers = {"Cache-Control": "no-store"}
        form = await form_fields(request)
        token = form.get("logout_token")
        try:
            claims = await self.logout_tokens.verify(token if isinstance(token, str) else "")
        except LogoutTokenError as exc:
            log.warning("%s: logout token refused: %s", self.config.name, exc)
            body = {"error": "invalid_request", "error_description": str(exc)}
            return JSONResponse(body, status_code=400, headers=headers)
        ended = self.sessions.end_for(sid=claims.get("sid"), sub=claims.get("sub"))
        log.info("%s: back-channel logout ended %d local session(s)", self.config.name, ended)
        return Response(status_code=200, headers=headers)

    def app(self, home: Page, extra_routes: Sequence[Route] = ()) -> Starlette:
        """The Starlette app: ``home`` at ``/`` plus the sign-in and logout routes."""

        async def index(request: Request) -> Response:
            return await home(request, self, self.current(request))

        @contextlib.asynccontextmanager
        async def lifespan(app: Starlette) -> AsyncIterator[None]:
            yield
            await self.http.aclose()

        return Starlette(
            routes=[
                Route("/", index),
                Route("/login", self.login),
                Route("/callback", self.callback),
                Route("/logout", self.logout, methods=["POST"]),
                Route("/signed-out", self.signed_out),
                Route("/backchannel-logout", self.backchannel_logout, methods=["POST"]),
                *extra_routes,
            ],
            middleware=[
                Middleware(
                    SessionMiddleware,
                    secret_key=self.config.session_secret,
                    # Cookies are per host, not per port: both apps on 127.0.0.1 share a
                    # cookie jar, so each needs a cookie name of its own.
                    session_cookie=self.config.cookie_name,
                    same_site="lax",
                    https_only=self.config.https,
                    max_age=8 * 3600,
                )
            ],
            lifespan=lifespan,
        )


async def form_fields(request: Request, limit: int = 65536) -> dict[str, str]:
    """The fields of a small ``application/x-www-form-urlencoded`` body (first value of each).

    Parsed here with the standard library, so the apps need no multipart parser.
    """
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        return {}
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            return {}
    fields = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    return {name: values[0] for name, values in fields.items()}


def page(config: AppConfig, title: str, body: str, status: int = 200) -> HTMLResponse:
    """A small HTML page, never cached."""
    html = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(title)}</title>"
        "<meta name='viewport' content='width=device-width'></head>"
        f"<body><header><strong>{escape(config.name)}</strong></header>"
        f"<h1>{escape(title)}</h1>{body}</body></html>"
    )
    headers = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}
    return HTMLResponse(html, status_code=status, headers=headers)


def signed_in_as(session: LocalSession) -> str:
    """The user line every page shows: name, username and subject."""
    user = session.user
    label = user.get("name") or user.get("preferred_username") or session.sub
    return (
        f"<p id='user'>Signed in as <strong>{escape(str(label))}</strong>"
        f" (<code>{escape(session.sub)}</code>)</p>"
    )


def logout_form(rp: RelyingParty, request: Request) -> str:
    token = escape(rp.csrf_token(request))
    return (
        "<form method='post' action='/logout'>"
        f"<input type='hidden' name='csrf' value='{token}'>"
        "<button type='submit' id='logout'>Sign out</button></form>"
    )
