"""Strict parsing of application/x-www-form-urlencoded request bodies (RFC 6749 section 3.1)."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import parse_qsl

from starlette.requests import Request

from idp.oauth.errors import InvalidRequest
from idp.oauth.grants.base import TokenRequest

FORM_TYPE = "application/x-www-form-urlencoded"
MULTI_VALUED = frozenset({"resource", "audience"})
MAX_FIELDS = 64


def parse_form(body: bytes, multi_valued: frozenset[str] = MULTI_VALUED) -> TokenRequest:
    """Parse a form body: empty values count as omitted, repeats are refused.

    RFC 6749 section 3.1: parameters sent without a value are treated as omitted, and
    request parameters must not be included more than once. ``resource`` (RFC 8707) and
    ``audience`` (RFC 8693 section 2.1) may repeat.
    """
    try:
        pairs = parse_qsl(
            body.decode("ascii"),
            keep_blank_values=True,
            strict_parsing=False,
            encoding="utf-8",
            errors="strict",
            max_num_fields=MAX_FIELDS,
        )
    except (UnicodeDecodeError, ValueError):
        raise InvalidRequest("the request body is not a valid UTF-8 form") from None
    params: dict[str, str] = {}
    repeated: dict[str, list[str]] = {"resource": [], "audience": []}
    for name, value in pairs:
        if "\x00" in name or "\x00" in value:
            raise InvalidRequest("parameters must not contain NUL characters")
        if value == "":
            continue
        if name in multi_valued:
            repeated.setdefault(name, []).append(value)
        elif name in params:
            raise InvalidRequest(f"parameter {name!r} is repeated")
        else:
            params[name] = value
    return TokenRequest(
        params=params,
        resources=tuple(repeated["resource"]),
        audiences=tuple(repeated["audience"]),
    )


def check_form_type(content_type: str | None) -> None:
    """Refuse a body that is not declared application/x-www-form-urlencoded."""
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    if media_type != FORM_TYPE:
        raise InvalidRequest(f"the content type must be {FORM_TYPE}")


async def read_form(request: Request) -> TokenRequest:
    """Read and parse the body of a POST that must be a form."""
    check_form_type(request.headers.get("content-type"))
    return parse_form(await request.body())


async def request_form(request: Request) -> TokenRequest:
    """The parameters of a GET (query string) or POST (form body) request, parsed strictly,
    with every ``resource`` given (RFC 8707 section 2).

    The authorization endpoint (OpenID Connect Core 1.0 section 3.1.2.1) and the
    end-session endpoint take both.
    """
    if request.method == "POST":
        return await read_form(request)
    return parse_form(request.url.query.encode("latin-1"))


async def request_params(request: Request) -> Mapping[str, str]:
    """The single-valued parameters of :func:`request_form`."""
    return (await request_form(request)).params
