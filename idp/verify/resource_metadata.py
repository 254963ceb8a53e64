"""OAuth 2.0 Protected Resource Metadata (RFC 9728): the document an API publishes about itself.

A client that knows only the API finds, from the ``resource_metadata`` URL of a 401's
challenge (section 5.1) or from the API's identifier (section 3.1), a JSON document naming
the authorization servers whose tokens the API accepts, so it can discover where to get one.

:class:`ResourceMetadata` holds the document; its URL and path are derived from the
``resource`` identifier it carries, so the ``resource`` a client reads always equals the
identifier its metadata URL was built from (the check of section 3.3) by construction.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from idp.verify.dpop import DPOP_ALGS
from idp.verify.verifier import TokenVerifier

WELL_KNOWN_SUFFIX = "oauth-protected-resource"
"""The well-known URI suffix registered by RFC 9728 section 3."""
BEARER_METHODS = ("header",)
"""How tokens may be sent: only in the Authorization header (RFC 6750 section 2.1), as
``idp.verify.starlette`` reads them."""


def _is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_resource_identifier(resource: str) -> str:
    """``resource`` if it is a usable protected resource identifier, else ValueError.

    RFC 9728 section 1.2: a URL with the https scheme and a host, with no fragment; a query is
    refused here too (the section allows one but discourages it, and a well-known route cannot
    tell queries apart). Plain http is allowed for loopback hosts only, for development.
    """
    if not isinstance(resource, str) or not resource:
        raise ValueError("the resource identifier must be a non-empty URL")
    try:
        parts = urlsplit(resource)
        parts.port  # noqa: B018 - raises ValueError on a port that is not a number
    except ValueError:
        raise ValueError(f"the resource identifier is not a URL: {resource!r}") from None
    host = parts.hostname or ""
    if parts.scheme not in ("https", "http") or not host:
        raise ValueError(f"the resource identifier must be an https URL: {resource!r}")
    if parts.scheme == "http" and not _is_loopback(host):
        raise ValueError(f"the resource identifier must use https: {resource!r}")
    if parts.query or parts.fragment or resource.endswith(("?", "#")):
        raise ValueError(f"the resource identifier has a query or fragment: {resource!r}")
    if parts.username is not None or parts.password is not None:
        raise ValueError(f"the resource identifier carries credentials: {resource!r}")
    return resource


def metadata_path(resource: str) -> str:
    """The path of ``resource``'s metadata on its host (RFC 9728 section 3.1).

    ``/.well-known/oauth-protected-resource`` is inserted between the host and the path; a
    terminating slash after the host is removed first, so ``https://api.example`` and
    ``https://api.example/`` share ``/.well-known/oauth-protected-resource`` while
    ``https://api.example/notes`` has ``/.well-known/oauth-protected-resource/notes``.
    """
    path = urlsplit(check_resource_identifier(resource)).path
    if path == "/":
        path = ""
    return f"/.well-known/{WELL_KNOWN_SUFFIX}{path}"


def metadata_url(resource: str) -> str:
    """The URL of ``resource``'s metadata document (RFC 9728 section 3.1)."""
    parts = urlsplit(check_resource_identifier(resource))
    return urlunsplit((parts.scheme, parts.netloc, metadata_path(resource), "", ""))


@dataclass(frozen=True, slots=True)
class ResourceMetadata:
    """The metadata of one protected resource (RFC 9728 section 2).

    ``resource`` is the identifier: the audience the API's tokens carry. ``url`` and ``path``
    are derived from it, never given, so the document served there names that same
    identifier (section 3.3). The DPoP members (RFC 9728 section 2, from RFC 9449) say which
    proof algorithms the verifier accepts and whether it accepts only DPoP-bound tokens.
    """

    resource: str
    authorization_servers: tuple[str, ...]
    scopes_supported: tuple[str, ...] = ()
    resource_name: str | None = None
    resource_documentation: str | None = None
    dpop_signing_alg_values_supported: tuple[str, ...] = DPOP_ALGS
    dpop_bound_access_tokens_required: bool = False

    def __post_init__(self) -> None:
        check_resource_identifier(self.resource)
        if not self.authorization_servers or not all(
            isinstance(server, str) and server for server in self.authorization_servers
        ):
            raise ValueError("at least one authorization server (issuer) is required")

    @classmethod
    def for_verifier(
        cls,
        verifier: TokenVerifier,
        resource: str | None = None,
        *,
        scopes_supported: Sequence[str] = (),
        resource_name: str | None = None,
        resource_documentation: str | None = None,
    ) -> ResourceMetadata:
        """The metadata of the API whose tokens ``verifier`` checks.

        ``resource`` defaults to the verifier's audience when it has exactly one, and must be
        one of its audiences otherwise: a client that asks for a token for the advertised
        resource then gets one the API accepts. The authorization server is the verifier's
        issuer (RFC 9728 section 2: its issuer identifier, as RFC 8414 defines it).
        """
        identifier = _resource_of(verifier.audiences, resource)
        return cls(
            resource=identifier,
            authorization_servers=(verifier.issuer,),
            scopes_supported=tuple(scopes_supported),
            resource_name=resource_name,
            resource_documentation=resource_documentation,
            dpop_bound_access_tokens_required=verifier.require_dpop,
        )

    @property
    def url(self) -> str:
        """Where the document is published (RFC 9728 section 3.1)."""
        return metadata_url(self.resource)

    @property
    def path(self) -> str:
        """The path of :attr:`url` on the resource's host."""
        return metadata_path(self.resource)

    def document(self) -> dict[str, Any]:
        """The JSON object of RFC 9728 section 2; optional members only when they have values."""
        document: dict[str, Any] = {
            "resource": self.resource,
            "authorization_servers": list(self.authorization_servers),
            "bearer_methods_supported": list(BEARER_METHODS),
        }
        if self.scopes_supported:
            document["scopes_supported"] = list(self.scopes_supported)
        if self.resource_name:
            document["resource_name"] = self.resource_name
        if self.resource_documentation:
            document["resource_documentation"] = self.resource_documentation
        if self.dpop_signing_alg_values_supported:
            document["dpop_signing_alg_values_supported"] = list(
                self.dpop_signing_alg_values_supported
            )
            document["dpop_bound_access_tokens_required"] = self.dpop_bound_access_tokens_required
        return document


def _resource_of(audiences: Collection[str], resource: str | None) -> str:
    if resource is None:
        if len(audiences) != 1:
            raise ValueError("the verifier accepts several audiences: name the resource")
        (resource,) = audiences
    elif resource not in audiences:
        raise ValueError(f"{resource!r} is not an audience the verifier accepts")
    return resource
