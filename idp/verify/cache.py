"""When to fetch the JWK Set and whether the cached keys may still be used.

Pure bookkeeping on one clock, shared by the blocking and the async verifier: fetching and
locking live in verifier.py. The rules:

- keys are fresh for the response's ``max-age`` clamped to [min_ttl, max_ttl] (min_ttl when
  the response gives none);
- an unknown kid triggers a fetch at most once per ``cooldown``;
- a failed fetch is retried at most once per ``cooldown``; meanwhile, and for at most
  ``stale_if_error`` seconds after the keys stopped being fresh, the last keys keep serving
  (RFC 5861 section 4 has the same idea for HTTP caches); after that nothing verifies.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

from idp.verify.errors import InvalidToken, KeysUnavailable
from idp.verify.keys import VerificationKey

logger = logging.getLogger("idp.verify")


@dataclass(frozen=True, slots=True)
class CachePolicy:
    """How long keys stay fresh, how often to refetch, how long to serve stale keys."""

    min_ttl: float = 60.0
    max_ttl: float = 86400.0
    cooldown: float = 30.0
    stale_if_error: float = 3600.0

    def __post_init__(self) -> None:
        if not 0 < self.min_ttl <= self.max_ttl:
            raise ValueError("need 0 < min_cache_ttl <= max_cache_ttl")
        if self.cooldown < 0 or self.stale_if_error < 0:
            raise ValueError("refetch_cooldown and stale_if_error must not be negative")

    def ttl(self, max_age: float | None) -> float:
        """The freshness lifetime for a response's max-age, within the bounds."""
        if max_age is None:
            return self.min_ttl
        return min(max(max_age, self.min_ttl), self.max_ttl)


@dataclass(slots=True)
class KeyCache:
    """The current keys by kid and the times that decide when to fetch again."""

    policy: CachePolicy
    keys: dict[str, VerificationKey] = field(default_factory=dict)
    loaded: bool = False
    fresh_until: float = -math.inf
    usable_until: float = -math.inf
    last_attempt: float = -math.inf
    last_failed: bool = False
    # Bumped by every fetch attempt: a caller that waited for the lock sees that another
    # caller has fetched meanwhile and does not fetch again (single flight).
    generation: int = 0

    def wants_fetch(self, kid: str, now: float) -> bool:
        """Whether a token with this kid should trigger a fetch now."""
        if now < self.fresh_until and kid in self.keys:
            return False
        if now >= self.fresh_until and not self.last_failed:
            return True
        return now - self.last_attempt >= self.policy.cooldown

    def key(self, kid: str, now: float) -> VerificationKey:
        """The key for ``kid``; KeysUnavailable when no keys may be used, else InvalidToken."""
        if not self.loaded or now >= self.usable_until:
            raise KeysUnavailable("the issuer's signing keys are not available")
        found = self.keys.get(kid)
        if found is None:
            raise InvalidToken("the token was signed by an unknown key")
        return found

    def succeeded(
        self, keys: dict[str, VerificationKey], max_age: float | None, now: float
    ) -> None:
        """Record a fetched key set and its freshness."""
        self.keys = keys
        self.loaded = True
        self.fresh_until = now + self.policy.ttl(max_age)
        self.usable_until = self.fresh_until + self.policy.stale_if_error
        self.last_attempt = now
        self.last_failed = False
        self.generation += 1

    def failed(self, reason: str, now: float) -> None:
        """Record a failed fetch and say in the log what is served meanwhile."""
        self.last_attempt = now
        self.last_failed = True
        self.generation += 1
        if self.loaded and now < self.usable_until:
            logger.warning(
                "JWKS fetch failed (%s); serving the cached keys for up to %.0f s more",
                reason,
                self.usable_until - now,
            )
        elif self.loaded:
            logger.error("JWKS fetch failed (%s); the cached keys are too old to use", reason)
        else:
            logger.error("JWKS fetch failed (%s); no keys to verify tokens with", reason)
