"""What the JWTs a client signs share: private_key_jwt and client_secret_jwt assertions
(RFC 7523 section 3) and request objects (RFC 9101 section 4).

Their JOSE header names an accepted algorithm and at most a ``kid`` of a key the client
registered, never a key of its own (``jku``, ``x5u``, ``jwk``, ``x5c``) or a critical
extension; their lifetime is short: ``exp`` in the future and at most an hour after ``iat``
or now, ``nbf`` (when given) passed, each with 30 s of leeway for clock skew. A broken rule
is an InvalidToken saying which; each caller answers with its own error.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from idp.verify.errors import InvalidToken

MAX_LIFETIME = 3600
LEEWAY = 30
OWN_KEY_HEADERS = ("jku", "x5u", "jwk", "x5c")


def signing_header(
    header: Mapping[str, Any], algs: Collection[str], what: str = "the JWT"
) -> tuple[str, str | None]:
    """The ``alg`` and ``kid`` of a header that follows the rules above; ``what`` names the
    JWT in the error."""
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in algs:
        raise InvalidToken(f"{what}'s algorithm is not accepted")
    if "crit" in header or any(name in header for name in OWN_KEY_HEADERS):
        raise InvalidToken(f"{what} names its own key or critical extensions")
    kid = header.get("kid")
    if kid is not None and not isinstance(kid, str):
        raise InvalidToken(f"{what}'s kid is not a string")
    return alg, kid


def checked_expiry(claims: Mapping[str, Any], now: float, what: str = "the JWT") -> float:
    """The ``exp`` of claims whose ``exp``, ``iat`` and ``nbf`` follow the rules above;
    ``what`` names the JWT in the error."""
    exp = numeric_date(claims.get("exp"))
    if exp is None or exp + LEEWAY <= now:
        raise InvalidToken(f"{what} has expired or has no exp")
    iat = numeric_date(claims.get("iat"))
    start = now if iat is None else min(iat, now)
    if exp - start > MAX_LIFETIME:
        raise InvalidToken(f"{what} lives longer than an hour")
    if "nbf" in claims:
        nbf = numeric_date(claims["nbf"])
        if nbf is None or nbf - LEEWAY > now:
            raise InvalidToken(f"{what} is not valid yet")
    return exp


def numeric_date(value: Any) -> float | None:
    """A NumericDate (RFC 7519 section 2): a JSON number, not a boolean or a string."""
    return float(value) if type(value) in (int, float) else None
