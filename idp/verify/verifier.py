"""TokenVerifier: checks RFC 9068 access tokens locally against the issuer's cached JWKS."""

from __future__ import annotations

import asyncio
import threading
import time
import weakref
from collections.abc import Callable, Collection, Iterable

from idp.verify.cache import CachePolicy, KeyCache
from idp.verify.compact import Header, Parts, check_claims, check_header, json_object, split_compact
from idp.verify.dpop import DpopNonces, ReplayCache, bound_key, check_proof
from idp.verify.errors import (
    InsufficientScope,
    InvalidDpopProof,
    InvalidDpopToken,
    InvalidToken,
    KeysUnavailable,
    UseDpopNonce,
)
from idp.verify.fetch import (
    Fetched,
    FetchError,
    afetch_json,
    discovery_url,
    fetch_json,
    jwks_uri_from,
)
from idp.verify.keys import KEY_TYPES, KeySetError, import_key_set
from idp.verify.result import VerifiedToken

DEFAULT_MAX_TOKEN_BYTES = 8 * 1024
_HEADER_CACHE_SIZE = 64


class TokenVerifier:
    """Verifies access tokens of one issuer for one resource server, with no call per token.

    Keys come from ``jwks_uri``, or from the issuer's discovery document when it is not
    given, and are cached as ``cache.py`` describes. ``verify`` blocks while a fetch runs;
    ``averify`` does not block the event loop. Both use the same cache, and each has one
    fetch in flight at most however many callers wait for it.

    A DPoP-bound token (RFC 9449, ``cnf.jkt``) is accepted only with a proof of its key for
    the request (``dpop_proof``, ``method``, ``url``); each proof is accepted once, as
    ``replay_cache`` (in memory, bounded: see :class:`idp.verify.dpop.ReplayCache`) records,
    for ``dpop_max_age`` seconds after its ``iat`` plus ``leeway``. With ``dpop_nonces`` the
    proof must also carry a current server nonce (RFC 9449 section 9), else UseDpopNonce.
    With ``require_dpop`` a token that is not DPoP-bound is refused (RFC 9449 section 7.2).
    """

    def __init__(
        self,
        issuer: str,
        audience: str | Collection[str],
        algorithms: Iterable[str] = ("RS256", "ES256"),
        leeway: float = 30,
        jwks_uri: str | None = None,
        *,
        max_token_bytes: int = DEFAULT_MAX_TOKEN_BYTES,
        min_cache_ttl: float = 60,
        max_cache_ttl: float = 86400,
        refetch_cooldown: float = 30,
        stale_if_error: float = 3600,
        http_timeout: float = 5,
        clock: Callable[[], float] = time.time,
        dpop_max_age: float = 60,
        replay_cache: ReplayCache | None = None,
        dpop_nonces: DpopNonces | None = None,
        require_dpop: bool = False,
    ) -> None:
        if not isinstance(issuer, str) or not issuer:
            raise ValueError("issuer is required")
        audiences = frozenset([audience] if isinstance(audience, str) else audience)
        if not audiences or not all(isinstance(a, str) and a for a in audiences):
            raise ValueError("audience must be a non-empty string or collection of strings")
        accepted = frozenset(algorithms)
        refused = accepted - KEY_TYPES.keys()
        if refused or not accepted:
            raise ValueError(f"algorithms must be asymmetric JWS algorithms; refused: {refused}")
        if leeway < 0 or max_token_bytes <= 0 or http_timeout <= 0:
            raise ValueError("leeway, max_token_bytes and http_timeout must be positive")
        self.issuer = issuer
        self.audiences = audiences
        self.algorithms = accepted
        self.leeway = float(leeway)
        self.max_token_bytes = max_token_bytes
        self.http_timeout = http_timeout
        self.refetch_cooldown = refetch_cooldown
        self._jwks_uri = jwks_uri
        self._clock = clock
        self.dpop_max_age = float(dpop_max_age)
        self.replay_cache = replay_cache if replay_cache is not None else ReplayCache()
        self.dpop_nonces = dpop_nonces
        self.require_dpop = require_dpop
        self._cache = KeyCache(
            CachePolicy(min_cache_ttl, max_cache_ttl, refetch_cooldown, stale_if_error)
        )
        self._lock = threading.Lock()
        self._async_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary()
        )
        # Encoded header -> its checked kid and alg: every token a key signs shares one header.
        self._headers: dict[str, Header] = {}

    @property
    def jwks_uri(self) -> str | None:
        """The JWKS URL, once given or discovered."""
        return self._jwks_uri

    def verify(
        self,
        token: str | bytes,
        *,
        scopes: Collection[str] = (),
        dpop_proof: str | None = None,
        method: str | None = None,
        url: str | None = None,
    ) -> VerifiedToken:
        """The verified token, or a VerificationError saying why not (RFC 9068 section 4).

        ``scopes`` are required of the token: missing ones raise InsufficientScope. A
        DPoP-bound token needs ``dpop_proof``, the request's ``DPoP`` header, made for the
        request's ``method`` and ``url`` (RFC 9449 section 7.1); a proof sent with a token
        that is not bound is refused (InvalidDpopToken).
        """
        parts, header = self._read(token)
        if self._cache.wants_fetch(header.kid, self._clock()):
            self._refresh(self._cache.generation)
        verified = self._finish(parts, header)
        return self._bound_and_scoped(verified, token, scopes, dpop_proof, method, url)

    async def averify(
        self,
        token: str | bytes,
        *,
        scopes: Collection[str] = (),
        dpop_proof: str | None = None,
        method: str | None = None,
        url: str | None = None,
    ) -> VerifiedToken:
        """``verify`` for async code: a needed fetch is awaited, never blocking the loop."""
        parts, header = self._read(token)
        if self._cache.wants_fetch(header.kid, self._clock()):
            await self._arefresh(self._cache.generation)
        verified = self._finish(parts, header)
        return self._bound_and_scoped(verified, token, scopes, dpop_proof, method, url)

    def _bound_and_scoped(
        self,
        verified: VerifiedToken,
        token: str | bytes,
        scopes: Collection[str],
        dpop_proof: str | None,
        method: str | None,
        url: str | None,
    ) -> VerifiedToken:
        self._check_binding(verified, token, dpop_proof, method, url)
        if scopes and not verified.has_scope(*scopes):
            raise InsufficientScope(tuple(scopes))
        return verified

    def _check_binding(
        self,
        verified: VerifiedToken,
        token: str | bytes,
        dpop_proof: str | None,
        method: str | None,
        url: str | None,
    ) -> None:
        """The token's DPoP binding holds for this request (RFC 9449 sections 7.1 and 4.3)."""
        jkt = bound_key(verified.claims)
        if jkt is None:
            if dpop_proof is not None:
                raise InvalidDpopToken("the access token is not DPoP-bound")
            if self.require_dpop:
                raise InvalidDpopToken("only DPoP-bound access tokens are accepted")
            return
        if dpop_proof is None:
            raise InvalidDpopToken("the access token is DPoP-bound: a DPoP proof is required")
        if method is None or url is None:
            raise ValueError("method and url are needed to check a DPoP proof")
        now = self._clock()
        raw = token.decode("ascii") if isinstance(token, bytes) else token
        proof = check_proof(
            dpop_proof,
            method=method,
            url=url,
            now=now,
            max_age=self.dpop_max_age,
            leeway=self.leeway,
            access_token=raw,
        )
        if proof.jkt != jkt:
            raise InvalidDpopProof("the DPoP proof is not of the key the token is bound to")
        if self.dpop_nonces is not None and not self.dpop_nonces.accepts(proof.nonce, now):
            described = "is stale" if proof.nonce else "is missing"
            raise UseDpopNonce(
                f"the DPoP proof's server nonce {described}", self.dpop_nonces.current(now)
            )
        self.replay_cache.accept(proof, proof.issued_at + self.dpop_max_age + self.leeway, now)

    def prefetch(self) -> None:
        """Fetch the keys now (for start-up); raise KeysUnavailable if that fails."""
        self._refresh(self._cache.generation)
        self._require_fetched()

    async def aprefetch(self) -> None:
        """``prefetch`` for async code."""
        await self._arefresh(self._cache.generation)
        self._require_fetched()

    def _require_fetched(self) -> None:
        if not self._cache.loaded or self._cache.last_failed:
            raise KeysUnavailable("the issuer's signing keys could not be fetched")

    def _read(self, token: str | bytes) -> tuple[Parts, Header]:
        parts = split_compact(token, self.max_token_bytes)
        header = self._headers.get(parts.encoded_header)
        if header is None:
            header = check_header(json_object(parts.encoded_header, "header"), self.algorithms)
        return parts, header

    def _finish(self, parts: Parts, header: Header) -> VerifiedToken:
        now = self._clock()
        key = self._cache.key(header.kid, now)
        if key.alg != header.alg:
            raise InvalidToken("the token's algorithm is not its key's algorithm")
        key.verify(parts.signing_input, parts.signature)
        verified = check_claims(
            json_object(parts.encoded_payload, "payload"),
            header,
            issuer=self.issuer,
            audiences=self.audiences,
            now=now,
            leeway=self.leeway,
        )
        if parts.encoded_header not in self._headers:
            if len(self._headers) >= _HEADER_CACHE_SIZE:
                self._headers.clear()
            self._headers[parts.encoded_header] = header
        return verified

    def _refresh(self, generation: int) -> None:
        with self._lock:
            if self._cache.generation != generation:
                return
            try:
                if self._jwks_uri is None:
                    discovered = fetch_json(discovery_url(self.issuer), self.http_timeout)
                    self._jwks_uri = jwks_uri_from(discovered.document, self.issuer)
                self._record(fetch_json(self._jwks_uri, self.http_timeout))
            except (FetchError, KeySetError) as exc:
                self._cache.failed(str(exc), self._clock())

    async def _arefresh(self, generation: int) -> None:
        async with self._async_lock():
            if self._cache.generation != generation:
                return
            try:
                if self._jwks_uri is None:
                    discovered = await afetch_json(discovery_url(self.issuer), self.http_timeout)
                    self._jwks_uri = jwks_uri_from(discovered.document, self.issuer)
                self._record(await afetch_json(self._jwks_uri, self.http_timeout))
            except (FetchError, KeySetError) as exc:
                self._cache.failed(str(exc), self._clock())

    def _record(self, fetched: Fetched) -> None:
        keys = import_key_set(fetched.document, self.algorithms)
        self._cache.succeeded(keys, fetched.max_age, self._clock())

    def _async_lock(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        lock = self._async_locks.get(loop)
        if lock is None:
            lock = self._async_locks[loop] = asyncio.Lock()
        return lock

    def __repr__(self) -> str:
        return f"TokenVerifier(issuer={self.issuer!r}, audience={sorted(self.audiences)!r})"
