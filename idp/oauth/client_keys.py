"""The public keys a client authenticates with (private_key_jwt; RFC 7591 section 2 ``jwks``
and ``jwks_uri``; OpenID Connect Core 1.0 section 10.1.1).

A registered JWK Set is parsed once per version of the document. A ``jwks_uri`` is fetched
and cached with the verifier library's rules (:mod:`idp.verify.cache`): fresh for the
response's max-age within bounds, refetched at most once per cooldown when an assertion
names an unknown kid (the client rotated its keys), stale keys kept for a while when the
client's server is down.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field

from idp.clock import Clock
from idp.oauth.errors import InvalidClient
from idp.store.base import ClientRecord
from idp.verify.cache import CachePolicy, KeyCache
from idp.verify.errors import InvalidToken, KeysUnavailable
from idp.verify.fetch import FetchError, afetch_json
from idp.verify.keys import KeySetError, VerificationKey, import_key_set

ASSERTION_ALGS = frozenset({"RS256", "PS256", "ES256"})
"""Algorithms a client may sign its assertions with."""
PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
"""JWK members of private or symmetric keys (RFC 7518 sections 6.2.2, 6.3.2 and 6.4)."""
FETCH_TIMEOUT = 5.0
CLIENT_KEYS_POLICY = CachePolicy(min_ttl=60.0, max_ttl=3600.0, cooldown=30.0, stale_if_error=3600.0)


def parse_client_jwks(document: str) -> dict[str, VerificationKey]:
    """The usable keys of a registered JWK Set: each needs ``kid`` and ``alg`` (one of
    RS256, PS256, ES256); ValueError when the document is not a JWK Set or has none."""
    try:
        parsed = json.loads(document)
        keys = import_key_set(parsed, ASSERTION_ALGS)
    except (ValueError, KeySetError) as exc:
        raise ValueError(f"not a JWK Set: {exc}") from None
    if any(isinstance(k, dict) and PRIVATE_MEMBERS & k.keys() for k in parsed["keys"]):
        raise ValueError("the JWK Set holds private key material; register public keys only")
    if not keys:
        raise ValueError("the JWK Set has no usable signing key (each needs kid and alg)")
    return keys


@dataclass
class ClientKeySets:
    """Every client's verification keys, shared by the requests of one process."""

    clock: Clock
    policy: CachePolicy = CLIENT_KEYS_POLICY
    _inline: dict[str, tuple[str, dict[str, VerificationKey]]] = field(default_factory=dict)
    _remote: dict[str, KeyCache] = field(default_factory=dict)
    _locks: dict[str, asyncio.Lock] = field(default_factory=dict)

    async def key(self, client: ClientRecord, kid: str | None, alg: str) -> VerificationKey:
        """The client's key named ``kid`` (or its only key for ``alg`` when no kid is given);
        InvalidClient when there is none."""
        if client.jwks is not None:
            return _pick(self._inline_keys(client, client.jwks), kid, alg)
        if client.jwks_uri is not None:
            return _pick(await self._remote_keys(client.jwks_uri, kid or ""), kid, alg)
        raise InvalidClient()

    def _inline_keys(self, client: ClientRecord, document: str) -> dict[str, VerificationKey]:
        cached = self._inline.get(client.client_id)
        if cached is not None and cached[0] == document:
            return cached[1]
        try:
            keys = parse_client_jwks(document)
        except ValueError:
            raise InvalidClient() from None
        self._inline[client.client_id] = (document, keys)
        return keys

    async def _remote_keys(self, uri: str, kid: str) -> dict[str, VerificationKey]:
        cache = self._remote.setdefault(uri, KeyCache(self.policy))
        if cache.wants_fetch(kid, self.clock()):
            lock = self._locks.setdefault(uri, asyncio.Lock())
            generation = cache.generation
            async with lock:
                if cache.generation == generation:
                    await self._fetch(uri, cache)
        now = self.clock()
        if not cache.loaded or now >= cache.usable_until:
            raise InvalidClient()
        return cache.keys

    async def _fetch(self, uri: str, cache: KeyCache) -> None:
        try:
            fetched = await afetch_json(uri, FETCH_TIMEOUT)
            keys = import_key_set(fetched.document, ASSERTION_ALGS)
        except (FetchError, KeySetError, KeysUnavailable, InvalidToken) as exc:
            cache.failed(str(exc), self.clock())
            return
        cache.succeeded(keys, fetched.max_age, self.clock())


def _pick(keys: dict[str, VerificationKey], kid: str | None, alg: str) -> VerificationKey:
    if kid is not None:
        key = keys.get(kid)
    else:
        fitting = [k for k in keys.values() if k.alg == alg]
        key = fitting[0] if len(fitting) == 1 else None
    if key is None or key.alg != alg:
        raise InvalidClient()
    return key
