"""Rules for URIs that clients register: redirect URIs and resource indicators."""

from __future__ import annotations

from urllib.parse import SplitResult, urlsplit

LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


class InvalidURI(ValueError):
    """A URI that may not be registered; the message says why."""


def check_redirect_uri(uri: str) -> str:
    """Validate a redirect URI for registration (RFC 6749 section 3.1.2, RFC 8252 section 7).

    It must be absolute with no fragment; http only on a loopback host, https elsewhere,
    or a private-use scheme in reverse-domain form for native apps.
    """
    parts = _absolute(uri, "redirect URI")
    if parts.fragment or "#" in uri:
        raise InvalidURI(f"redirect URI must not contain a fragment: {uri!r}")
    if parts.scheme == "http":
        if parts.hostname not in LOOPBACK_HOSTS:
            raise InvalidURI(f"redirect URI must use https unless the host is loopback: {uri!r}")
    elif parts.scheme != "https" and "." not in parts.scheme:
        raise InvalidURI(
            f"redirect URI must be https, http on loopback, or a reverse-domain scheme: {uri!r}"
        )
    return uri


def check_backchannel_logout_uri(uri: str) -> str:
    """Validate a back-channel logout URI (OpenID Connect Back-Channel Logout 1.0 section 2.2).

    An absolute https URL (http only on a loopback host) without a fragment.
    """
    parts = _absolute(uri, "back-channel logout URI")
    if parts.fragment or "#" in uri:
        raise InvalidURI(f"back-channel logout URI must not contain a fragment: {uri!r}")
    if parts.scheme == "http":
        if parts.hostname not in LOOPBACK_HOSTS:
            raise InvalidURI(
                f"back-channel logout URI must use https unless the host is loopback: {uri!r}"
            )
    elif parts.scheme != "https":
        raise InvalidURI(f"back-channel logout URI must be an https URL: {uri!r}")
    return uri


def check_resource_uri(uri: str) -> str:
    """Validate a resource indicator / audience (RFC 8707 section 2): absolute, no fragment."""
    parts = _absolute(uri, "audience")
    if parts.fragment or "#" in uri:
        raise InvalidURI(f"audience must not contain a fragment: {uri!r}")
    return uri


def _absolute(uri: str, what: str) -> SplitResult:
    if not uri or any(c.isspace() or ord(c) < 0x20 for c in uri):
        raise InvalidURI(f"{what} must be an absolute URI without spaces: {uri!r}")
    try:
        parts = urlsplit(uri)
        _ = parts.port
    except ValueError:
        raise InvalidURI(f"{what} is not a valid URI: {uri!r}") from None
    if not parts.scheme or not (parts.netloc or parts.path):
        raise InvalidURI(f"{what} must be an absolute URI: {uri!r}")
    if parts.scheme in ("http", "https") and not parts.hostname:
        raise InvalidURI(f"{what} must name a host: {uri!r}")
    return parts
