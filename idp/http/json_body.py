"""Strict JSON request bodies (RFC 8259): an object with known members of the right types.

The same field list that checks a body (or a query string, :func:`parse_text`) also
describes it in the OpenAPI document, so the two cannot drift apart.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request

from idp.oauth.errors import InvalidRequest

JSON_TYPE = "application/json"
MAX_LIST_ITEMS = 100
MAX_STRING_LENGTH = 2048

STRING = "string"
NULLABLE_STRING = "nullable string"
STRING_LIST = "string list"
BOOLEAN = "boolean"
POSITIVE_INTEGER = "positive integer"


@dataclass(frozen=True)
class Field:
    """One member a JSON body may carry; ``limit`` caps a string's length (default
    MAX_STRING_LENGTH) or an integer's value."""

    name: str
    kind: str
    description: str
    required: bool = False
    limit: int | None = None

    def schema(self) -> dict[str, Any]:
        """The member's JSON Schema (draft 2020-12, as OpenAPI 3.1 uses)."""
        longest = self.limit or MAX_STRING_LENGTH
        limited = {"type": "string", "maxLength": longest}
        integer: dict[str, Any] = {"type": "integer", "minimum": 1}
        if self.limit is not None:
            integer["maximum"] = self.limit
        shapes: dict[str, dict[str, Any]] = {
            STRING: limited,
            NULLABLE_STRING: {"type": ["string", "null"], "maxLength": longest},
            STRING_LIST: {"type": "array", "items": limited, "maxItems": MAX_LIST_ITEMS},
            BOOLEAN: {"type": "boolean"},
            POSITIVE_INTEGER: integer,
        }
        return {**shapes[self.kind], "description": self.description}


def object_schema(fields: Sequence[Field]) -> dict[str, Any]:
    """The JSON Schema of a body made of ``fields``; other members are refused."""
    schema: dict[str, Any] = {
        "type": "object",
        "properties": {f.name: f.schema() for f in fields},
        "additionalProperties": False,
    }
    required = [f.name for f in fields if f.required]
    if required:
        schema["required"] = required
    return schema


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document: dict[str, Any] = {}
    for name, value in pairs:
        if name in document:
            raise InvalidRequest(f"member {name!r} appears twice")
        document[name] = value
    return document


def _refuse_constant(name: str) -> Any:
    raise InvalidRequest(f"{name} is not a JSON number")


def _check(field: Field, value: Any) -> None:
    if field.kind == BOOLEAN:
        if not isinstance(value, bool):
            raise InvalidRequest(f"{field.name} must be true or false")
        return
    if field.kind == NULLABLE_STRING and value is None:
        return
    if field.kind in (STRING, NULLABLE_STRING):
        what = "a string or null" if field.kind == NULLABLE_STRING else "a string"
        if not isinstance(value, str):
            raise InvalidRequest(f"{field.name} must be {what}")
        if len(value) > (field.limit or MAX_STRING_LENGTH) or "\x00" in value:
            raise InvalidRequest(f"{field.name} is too long or holds a NUL character")
        return
    if field.kind == POSITIVE_INTEGER:
        _check_integer(field, value)
        return
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidRequest(f"{field.name} must be an array of strings")
    if len(value) > MAX_LIST_ITEMS:
        raise InvalidRequest(f"{field.name} has more than {MAX_LIST_ITEMS} items")
    if any(len(v) > MAX_STRING_LENGTH or "\x00" in v for v in value):
        raise InvalidRequest(f"an item of {field.name} is too long or holds a NUL character")


def _check_integer(field: Field, value: Any) -> None:
    top = field.limit
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or value < 1
        or (top is not None and value > top)
    ):
        bounds = f"from 1 to {top}" if top is not None else "of at least 1"
        raise InvalidRequest(f"{field.name} must be a whole number {bounds}")


_TRUTH = {"true": True, "false": False}


def parse_text(field: Field, text: str) -> Any:
    """A query parameter's value for ``field`` (a string, a whole number, or ``true`` or
    ``false`` as JSON spells them), checked."""
    if field.kind == BOOLEAN:
        truth = _TRUTH.get(text)
        _check(field, truth)
        return truth
    if field.kind != POSITIVE_INTEGER:
        _check(field, text)
        return text
    value: Any = int(text) if text.isascii() and text.isdigit() and len(text) < 19 else None
    _check_integer(field, value)
    return value


def parse_json_object(body: bytes, fields: Sequence[Field]) -> dict[str, Any]:
    """Parse a body that must be a JSON object of the given members, and check their types."""
    try:
        document = json.loads(
            body.decode("utf-8"),
            object_pairs_hook=_no_duplicates,
            parse_constant=_refuse_constant,
        )
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise InvalidRequest("the request body is not valid JSON") from None
    if not isinstance(document, dict):
        raise InvalidRequest("the request body must be a JSON object")
    known = {f.name: f for f in fields}
    unknown = sorted(name for name in document if name not in known)
    if unknown:
        raise InvalidRequest(
            f"unknown member {unknown[0]!r}; expected some of: {', '.join(known) or 'none'}"
        )
    for field in fields:
        if field.name in document:
            _check(field, document[field.name])
        elif field.required:
            raise InvalidRequest(f"{field.name} is required")
    return document


async def read_json(request: Request, fields: Sequence[Field], *, optional: bool) -> dict[str, Any]:
    """Read a JSON object body; with ``optional`` an empty body counts as ``{}``."""
    body = await request.body()
    if optional and not body.strip():
        return {}
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type != JSON_TYPE:
        raise InvalidRequest(f"the content type must be {JSON_TYPE}")
    return parse_json_object(body, fields)
