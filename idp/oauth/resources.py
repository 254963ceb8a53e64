"""Resource indicators (RFC 8707): which protected resources a token is meant for.

A client names them with ``resource`` (repeatable) at the authorization endpoint, at the
pushed authorization endpoint or at the token endpoint; each becomes an ``aud`` of the access
token. Only the client's registered audiences may be named.
"""

from __future__ import annotations

from collections.abc import Sequence

from idp.oauth.errors import InvalidTarget
from idp.oauth.uris import InvalidURI, check_resource_uri
from idp.store.base import ClientRecord

MAX_RESOURCE_LENGTH = 2048


def check_resource_form(resource: str) -> None:
    """A resource is an absolute URI without a fragment (RFC 8707 section 2)."""
    if len(resource) > MAX_RESOURCE_LENGTH:
        raise InvalidTarget("a resource indicator is too long")
    try:
        check_resource_uri(resource)
    except InvalidURI:
        raise InvalidTarget("a resource must be an absolute URI without a fragment") from None


def requested_resources(resources: Sequence[str], client: ClientRecord) -> tuple[str, ...]:
    """The resources of an authorization request (RFC 8707 section 2.1): each an absolute
    URI among the client's registered audiences, repeats dropped; invalid_target otherwise."""
    for resource in resources:
        check_resource_form(resource)
    unknown = [r for r in resources if r not in client.audiences]
    if unknown:
        raise InvalidTarget(f"resource not allowed for this client: {unknown[0]}")
    return tuple(dict.fromkeys(resources))


def granted_audiences(
    requested: Sequence[str], granted: Sequence[str], client: ClientRecord, issuer: str
) -> list[str]:
    """The audiences of an access token issued under a grant (RFC 8707 section 2.2).

    When the grant carries resources (asked for at authorization), a ``resource`` at the
    token endpoint may only narrow them: one outside them is invalid_target; none asked
    means all of them. A grant without resources keeps the token endpoint's own rule: any
    registered audience may be asked, else the client's first or the issuer.
    """
    if not granted:
        return resolve_audiences(requested, client, issuer)
    extra = [r for r in requested if r not in granted]
    if extra:
        raise InvalidTarget(f"resource not granted by the authorization request: {extra[0]}")
    return list(dict.fromkeys(requested or granted))


def resolve_audiences(requested: Sequence[str], client: ClientRecord, issuer: str) -> list[str]:
    """The token's audiences (RFC 8707 section 2): those asked for, all registered to the client.

    With no ``resource`` the audience is the client's first registered one, or the issuer.
    """
    if not requested:
        return [client.audiences[0] if client.audiences else issuer]
    unknown = [r for r in requested if r not in client.audiences]
    if unknown:
        raise InvalidTarget(f"resource not allowed for this client: {unknown[0]}")
    return list(dict.fromkeys(requested))
