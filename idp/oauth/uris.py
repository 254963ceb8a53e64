"""Rules for URIs that clients register: redirect URIs, resource indicators, logout URIs."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

from idp.config import Settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

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


@dataclass(frozen=True)
class BackchannelRules:
    """Where back-channel logout tokens may be sent (Back-Channel Logout 1.0 section 2.2).

    ``https_only`` follows the issuer: an https issuer sends its logout tokens over https
    only. ``allow_private`` lets a development setup name loopback, private and link-local
    hosts, which a production IdP must never be made to call (server-side request forgery).
    """

    https_only: bool = True
    allow_private: bool = False


STRICT_BACKCHANNEL = BackchannelRules()


def backchannel_rules(settings: Settings) -> BackchannelRules:
    """The rules the configured issuer and IDP_ALLOW_PRIVATE_BACKCHANNEL call for."""
    return BackchannelRules(
        https_only=settings.issuer_is_https, allow_private=settings.allow_private_backchannel
    )


def check_backchannel_logout_uri(uri: str, rules: BackchannelRules = STRICT_BACKCHANNEL) -> str:
    """Validate a back-channel logout URI (OpenID Connect Back-Channel Logout 1.0 section 2.2).

    An absolute URL without a fragment: https (http only on a loopback host while the issuer
    is not https), on a host that is not loopback, private, link-local or otherwise not
    globally reachable unless ``rules.allow_private``. A raw IPv4 address written other than
    as four decimal numbers (hex, octal, a single integer) is refused whatever the rules.
    """
    return check_outbound_uri(uri, "back-channel logout URI", rules)


def check_jwks_uri(uri: str, rules: BackchannelRules = STRICT_BACKCHANNEL) -> str:
    """Validate a client's ``jwks_uri`` (RFC 7591 section 2), which this server fetches: the
    same rules as a back-channel logout URI, since both are requests we make to the client."""
    return check_outbound_uri(uri, "jwks_uri", rules)


def check_outbound_uri(uri: str, what: str, rules: BackchannelRules) -> str:
    """A URL this server will request, named ``what`` in errors (the rules above)."""
    parts = _absolute(uri, what)
    if parts.fragment or "#" in uri:
        raise InvalidURI(f"{what} must not contain a fragment: {uri!r}")
    check_backchannel_host(parts.hostname or "", rules.allow_private)
    if parts.scheme == "http":
        if rules.https_only or not is_loopback_host(parts.hostname or ""):
            raise InvalidURI(
                f"{what} must use https (http only on a loopback host "
                f"while the issuer is not https): {uri!r}"
            )
    elif parts.scheme != "https":
        raise InvalidURI(f"{what} must be an https URL: {uri!r}")
    return uri


def check_backchannel_host(host: str, allow_private: bool) -> None:
    """Refuse a host logout tokens must not go to (see :func:`check_backchannel_logout_uri`)."""
    name = host.lower().removesuffix(".")
    address = ip_literal(name)
    if address is None and _ends_in_number(name):
        raise InvalidURI(
            f"back-channel logout URI names a raw IP address in a non-standard form: {host!r}"
        )
    if address is None and not _HOST_NAME.match(name):
        # Resolvers map some non-ASCII names onto others (U+24DB to "l"): only A-labels.
        raise InvalidURI(
            "back-channel logout URI host must be ASCII letters, digits, '-', '_' and '.' "
            f"(xn-- form for international names): {host!r}"
        )
    if allow_private:
        return
    if (address is not None and not is_public_address(address)) or is_loopback_host(name):
        raise InvalidURI(
            "back-channel logout URI must not name a loopback, private, link-local or "
            f"reserved host: {host!r}"
        )


def is_loopback_host(host: str) -> bool:
    """``localhost`` and its subdomains (RFC 6761 section 6.3) or a loopback IP address."""
    name = host.lower().removesuffix(".")
    if name == "localhost" or name.endswith(".localhost"):
        return True
    address = ip_literal(name)
    return address is not None and address.is_loopback


def ip_literal(host: str) -> IPAddress | None:
    """The address a host names when it is a canonical IPv4 or an IPv6 literal, else None."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def is_public_address(address: IPAddress) -> bool:
    """Whether an address is globally reachable unicast, IPv4 inside IPv6 forms included."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None and not is_public_address(embedded):
            return False
    return address.is_global and not address.is_multicast


_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_NUMBER = re.compile(r"^(0x[0-9a-f]*|[0-9]+)$")
_HOST_NAME = re.compile(r"^[a-z0-9_-]+(\.[a-z0-9_-]+)*$")


def _ends_in_number(host: str) -> bool:
    """A host whose last label is a number is read as IPv4 by URL parsers and resolvers."""
    return bool(host) and bool(_NUMBER.match(host.rsplit(".", 1)[-1]))


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
