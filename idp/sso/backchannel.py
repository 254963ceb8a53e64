"""OpenID Connect Back-Channel Logout 1.0: tell relying parties, server to server, a session ended.

The logout token (section 2.4) is a JWT signed like an ID token, typed ``logout+jwt``
(section 2.4, RFC 8725 section 3.11), carrying ``sid`` and ``sub``, the back-channel
logout event and never a ``nonce``. It is POSTed form-encoded to each client's
``backchannel_logout_uri`` (section 2.5). Delivery runs in the background so the user's
logout never waits for a relying party; network errors and 5xx answers are retried a few
times with a doubling pause, and what finally fails is logged without the token (2.7).

Before each attempt the URI is checked again by the registration rules, its host is
resolved, and every address it resolves to must be globally reachable unless private
receivers are allowed (IDP_ALLOW_PRIVATE_BACKCHANNEL): the IdP is not a way into the
network it runs in (server-side request forgery). The request then goes to the
address that was checked, with the URI's host in ``Host`` and as the TLS server name, so a
second DNS answer cannot redirect it (DNS rebinding).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import secrets
import socket
import ssl
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from idp.clock import Clock
from idp.config import Settings
from idp.keyring.ring import KeyRing, KeyRingService
from idp.oauth.uris import (
    BackchannelRules,
    InvalidURI,
    backchannel_rules,
    check_backchannel_logout_uri,
    is_public_address,
)

log = logging.getLogger("idp.sso.backchannel")

LOGOUT_TOKEN_TYP = "logout+jwt"
BACKCHANNEL_LOGOUT_EVENT = "http://schemas.openid.net/event/backchannel-logout"
LOGOUT_TOKEN_LIFETIME = 120
DEFAULT_ATTEMPTS = 4
DEFAULT_BACKOFF = 0.5
DEFAULT_TIMEOUT = 5.0

Resolver = Callable[[str, int], Awaitable[Sequence[str]]]
"""Host and port in, the IP addresses it resolves to out."""


class RefusedReceiver(Exception):
    """A logout URI or the addresses its host resolves to may not be called."""


async def resolve_host(host: str, port: int) -> Sequence[str]:
    """Every address the system resolver gives for ``host`` (TCP), in its order."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


@dataclass(frozen=True)
class PinnedRequest:
    """A request to a checked address: URL with the IP, the URI's host as Host and TLS name."""

    url: str
    headers: dict[str, str]
    extensions: dict[str, Any]


async def pin_receiver(uri: str, rules: BackchannelRules, resolve: Resolver) -> PinnedRequest:
    """Check ``uri`` and the addresses its host resolves to; address the request to one of them.

    Raises :class:`RefusedReceiver` when the URI breaks the registration rules or any
    resolved address is not globally reachable (unless ``rules.allow_private``), and
    ``OSError`` when the host does not resolve.
    """
    try:
        check_backchannel_logout_uri(uri, rules)
    except InvalidURI as exc:
        raise RefusedReceiver(str(exc)) from None
    parts = urlsplit(uri)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    addresses = [ipaddress.ip_address(a.split("%", 1)[0]) for a in await resolve(host, port)]
    if not addresses:
        raise OSError(f"{host} resolves to no address")
    if not rules.allow_private:
        refused = [a for a in addresses if not is_public_address(a)]
        if refused:
            raise RefusedReceiver(f"{host} resolves to a non-public address {refused[0]}")
    address = addresses[0]
    literal = f"[{address}]" if address.version == 6 else str(address)
    netloc = f"{literal}:{port}"
    extensions: dict[str, Any] = {"sni_hostname": host} if parts.scheme == "https" else {}
    return PinnedRequest(
        url=parts._replace(netloc=netloc).geturl(),
        headers={"Host": parts.netloc.rsplit("@", 1)[-1]},
        extensions=extensions,
    )


@dataclass(frozen=True)
class BackchannelTarget:
    """A relying party to notify: its client_id (the token's audience) and its logout URI.

    ``alg`` signs its token; pass the client's ID-token algorithm (section 2.4).
    """

    client_id: str
    uri: str
    alg: str = "RS256"


def logout_token_claims(
    *,
    issuer: str,
    client_id: str,
    sid: str,
    sub: str,
    issued_at: int,
    lifetime: int = LOGOUT_TOKEN_LIFETIME,
) -> dict[str, Any]:
    """The claims of a logout token (Back-Channel Logout 1.0 section 2.4): no nonce, ever."""
    return {
        "iss": issuer,
        "aud": client_id,
        "iat": issued_at,
        "exp": issued_at + lifetime,
        "jti": secrets.token_urlsafe(16),
        "sid": sid,
        "sub": sub,
        "events": {BACKCHANNEL_LOGOUT_EVENT: {}},
    }


def build_logout_token(
    ring: KeyRing, *, issuer: str, target: BackchannelTarget, sid: str, sub: str, now: float
) -> str:
    """A signed logout token for one relying party, typed ``logout+jwt``."""
    claims = logout_token_claims(
        issuer=issuer, client_id=target.client_id, sid=sid, sub=sub, issued_at=int(now)
    )
    return ring.sign(target.alg, claims, LOGOUT_TOKEN_TYP, now)


class BackchannelNotifier:
    """Delivers logout tokens in the background; ``aclose`` at shut-down."""

    def __init__(
        self,
        settings: Settings,
        keys: KeyRingService,
        clock: Clock,
        *,
        attempts: int = DEFAULT_ATTEMPTS,
        backoff: float = DEFAULT_BACKOFF,
        timeout: float = DEFAULT_TIMEOUT,
        resolve: Resolver = resolve_host,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self._settings = settings
        self._rules = backchannel_rules(settings)
        self._resolve = resolve
        self._tls = tls
        self._keys = keys
        self._clock = clock
        self._attempts = attempts
        self._backoff = backoff
        self._timeout = timeout
        self._client: httpx.AsyncClient | None = None
        self._pending: set[asyncio.Task[bool]] = set()

    def notify(self, *, sid: str, sub: str, targets: Sequence[BackchannelTarget]) -> None:
        """Schedule one delivery per target and return at once (call it on the event loop)."""
        loop = asyncio.get_running_loop()
        for target in targets:
            task = loop.create_task(
                self._deliver(target, sid, sub), name=f"idp-backchannel-{target.client_id}"
            )
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)

    @property
    def pending(self) -> int:
        """How many deliveries are still running."""
        return len(self._pending)

    async def drain(self) -> None:
        """Wait until every scheduled delivery has finished (for tests and shut-down)."""
        while self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)

    async def aclose(self, timeout: float = 5.0) -> None:
        """Give pending deliveries up to ``timeout`` seconds, cancel the rest, close the client."""
        if self._pending:
            _, unfinished = await asyncio.wait(list(self._pending), timeout=timeout)
            for task in unfinished:
                task.cancel()
            if unfinished:
                log.warning(
                    "back-channel logout: %d deliveries cancelled at shut-down", len(unfinished)
                )
                await asyncio.gather(*unfinished, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            # No kept-alive connections: one verified for one host name must not carry a
            # request for another name that resolved to the same address.
            self._client = httpx.AsyncClient(
                timeout=self._timeout,
                follow_redirects=False,
                limits=httpx.Limits(max_keepalive_connections=0),
                verify=self._tls or True,
            )
        return self._client

    async def _deliver(self, target: BackchannelTarget, sid: str, sub: str) -> bool:
        """POST the logout token, retrying network errors and 5xx; say whether it arrived."""
        where = urlsplit(target.uri).netloc
        try:
            token = build_logout_token(
                self._keys.ring,
                issuer=self._settings.issuer,
                target=target,
                sid=sid,
                sub=sub,
                now=self._clock(),
            )
        except Exception as exc:
            log.error(
                "back-channel logout for client %s: cannot sign the logout token: %s",
                target.client_id,
                type(exc).__name__,
            )
            return False
        problem = ""
        for attempt in range(1, self._attempts + 1):
            try:
                pinned = await pin_receiver(target.uri, self._rules, self._resolve)
                response = await self._http().post(
                    pinned.url,
                    data={"logout_token": token},
                    headers=pinned.headers,
                    extensions=pinned.extensions,
                )
            except RefusedReceiver as exc:
                problem = f"refused: {exc}"
                break
            except (httpx.HTTPError, OSError) as exc:
                problem = type(exc).__name__
            else:
                if response.is_success:
                    log.debug("back-channel logout delivered to client %s", target.client_id)
                    return True
                problem = f"HTTP {response.status_code}"
                if response.status_code < 500:
                    # Section 2.8: the RP refused this token; sending it again will not help.
                    break
            if attempt < self._attempts:
                await asyncio.sleep(self._backoff * 2 ** (attempt - 1))
        log.warning(
            "back-channel logout to client %s at %s failed after %d attempt(s): %s",
            target.client_id,
            where,
            attempt,
            problem,
        )
        return False
