"""HTTP for the verifier: the discovery document and the JWK Set, sync and async.

Each fetch uses a short-lived httpx client, so a verifier is not tied to one event loop or
thread; fetches are rare (once per cache lifetime), so the connection set-up is cheap
beside them. Redirects are not followed and bodies are bounded.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

MAX_DOCUMENT_BYTES = 512 * 1024
_MAX_AGE = re.compile(r"(?:^|,)\s*max-age\s*=\s*\"?(\d+)\"?\s*(?:,|$)", re.IGNORECASE)
_NO_CACHE = re.compile(r"(?:^|,)\s*(?:no-cache|no-store)\s*(?:,|$|=)", re.IGNORECASE)


# What httpx raises for a failed request, a bad URL or a broken body stream.
_HTTP_ERRORS = (httpx.HTTPError, httpx.InvalidURL, httpx.StreamError)


class FetchError(Exception):
    """A document could not be fetched or is not what it should be; the message is safe to log."""


@dataclass(frozen=True, slots=True)
class Fetched:
    """A JSON document and how long its server says it may be cached (None: not said)."""

    document: Any
    max_age: float | None


def discovery_url(issuer: str) -> str:
    """Where the issuer's metadata lives (OpenID Connect Discovery 1.0 section 4)."""
    return issuer.rstrip("/") + "/.well-known/openid-configuration"


def jwks_uri_from(document: Any, issuer: str) -> str:
    """The jwks_uri of a discovery document that belongs to ``issuer`` (Discovery 4.3).

    The document's ``issuer`` must equal the configured one exactly; an https issuer must
    publish an https jwks_uri.
    """
    if not isinstance(document, dict) or document.get("issuer") != issuer:
        raise FetchError("the discovery document names another issuer")
    jwks_uri = document.get("jwks_uri")
    try:
        parsed = urlsplit(jwks_uri) if isinstance(jwks_uri, str) else None
    except ValueError:
        parsed = None
    if parsed is None or parsed.scheme not in ("https", "http") or not parsed.hostname:
        raise FetchError("the discovery document has no valid jwks_uri")
    if urlsplit(issuer).scheme == "https" and parsed.scheme != "https":
        raise FetchError("the discovery document's jwks_uri is not https")
    return str(jwks_uri)


def cache_lifetime(headers: httpx.Headers) -> float | None:
    """Seconds the response may still be cached (RFC 9111 section 5.2.2.1, minus Age).

    ``no-cache`` or ``no-store`` give 0; no max-age gives None.
    """
    cache_control = ", ".join(headers.get_list("cache-control"))
    if _NO_CACHE.search(cache_control):
        return 0.0
    match = _MAX_AGE.search(cache_control)
    if match is None:
        return None
    age = headers.get("age", "0").strip()
    return max(0.0, float(match.group(1)) - (float(age) if age.isdigit() else 0.0))


def _decode(response: httpx.Response, body: bytes, url: str) -> Fetched:
    if response.status_code != 200:
        raise FetchError(f"{url} answered HTTP {response.status_code}")
    try:
        document = json.loads(body)
    except ValueError:
        raise FetchError(f"{url} did not answer JSON") from None
    return Fetched(document, cache_lifetime(response.headers))


def _append(body: bytearray, chunk: bytes, url: str) -> None:
    """Add a chunk of a document being read; refuse one larger than MAX_DOCUMENT_BYTES."""
    body += chunk
    if len(body) > MAX_DOCUMENT_BYTES:
        raise FetchError(f"{url} answered more than {MAX_DOCUMENT_BYTES} bytes")


def fetch_json(url: str, timeout: float) -> Fetched:
    """GET a JSON document (blocking)."""
    try:
        with (
            httpx.Client(timeout=timeout, follow_redirects=False) as client,
            client.stream("GET", url, headers={"Accept": "application/json"}) as response,
        ):
            body = bytearray()
            for chunk in response.iter_bytes():
                _append(body, chunk, url)
            return _decode(response, bytes(body), url)
    except _HTTP_ERRORS as exc:
        raise FetchError(f"{url} could not be fetched: {type(exc).__name__}") from None


async def afetch_json(url: str, timeout: float) -> Fetched:
    """GET a JSON document without blocking the event loop."""
    try:
        async with (
            httpx.AsyncClient(timeout=timeout, follow_redirects=False) as client,
            client.stream("GET", url, headers={"Accept": "application/json"}) as response,
        ):
            body = bytearray()
            async for chunk in response.aiter_bytes():
                _append(body, chunk, url)
            return _decode(response, bytes(body), url)
    except _HTTP_ERRORS as exc:
        raise FetchError(f"{url} could not be fetched: {type(exc).__name__}") from None
