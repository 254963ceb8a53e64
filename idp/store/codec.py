"""Rows to records and back, for every table, from one description per table.

A ``Table`` names its record class (``idp.store.records``), its key, and what the database
fills in or the store adds; the columns are the record's fields. How a value is written and
read follows the field's annotation: ``tuple[str, ...]`` and ``Mapping`` fields are JSON text,
and each value read is brought to its field's type, since the two drivers hand back 0/1 for
booleans (SQLite) and may hand back ints where a float is stored.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import fields
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from idp.store.records import (
    AuditEntry,
    AuthorizationCodeRecord,
    ClientRecord,
    KeyRecord,
    LoginCounter,
    RefreshTokenRecord,
    SessionRecord,
    UserRecord,
)
from idp.store.usernames import canonical_username

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

R = TypeVar("R", bound="DataclassInstance")

Convert = Callable[[Any], Any]


def _same(value: Any) -> Any:
    return value


def _optional(convert: Convert) -> Convert:
    return lambda value: None if value is None else convert(value)


def _json_list(values: Sequence[str]) -> str:
    return json.dumps(list(values))


def _json_object(detail: Mapping[str, Any]) -> str:
    return json.dumps(dict(detail), sort_keys=True)


def _str_tuple(text: str) -> tuple[str, ...]:
    return tuple(json.loads(text))


# By the annotation of a field, as ``from __future__ import annotations`` leaves it.
_WRITE: dict[str, Convert] = {"tuple[str, ...]": _json_list, "Mapping[str, Any]": _json_object}
_READ: dict[str, Convert] = {
    "str": _same,
    "str | None": _same,
    "bool": bool,
    "int": int,
    "int | None": _optional(int),
    "float": float,
    "float | None": _optional(float),
    "bytes": bytes,
    "bytes | None": _optional(bytes),
    "tuple[str, ...]": _str_tuple,
    "Mapping[str, Any]": json.loads,
}


class Table(Generic[R]):
    """One table whose rows are the records of one dataclass, a column per field."""

    def __init__(
        self,
        name: str,
        record: type[R],
        key: str,
        *,
        generated: tuple[str, ...] = (),
        derived: Mapping[str, Callable[[R], object]] | None = None,
    ) -> None:
        """``generated`` fields are filled in by the database (never written); ``derived``
        columns are written beside the fields, computed from the record."""
        self.name = name
        self.record = record
        self.key = key
        self._read = [(f.name, _READ[str(f.type)]) for f in fields(record)]
        self._write = [
            (f.name, _WRITE.get(str(f.type), _same))
            for f in fields(record)
            if f.name not in generated
        ]
        self._derived = dict(derived or {})
        self.written = (*(name for name, _ in self._write), *self._derived)
        """The columns written, in the order of ``values``."""
        self.columns = ", ".join(name for name, _ in self._read)
        """The columns read, in field order."""
        self.select = f"SELECT {self.columns} FROM {name}"  # noqa: S608
        self.insert = self.insert_sql()
        assignments = ", ".join(f"{column} = ?" for column in self.written if column != key)
        self.update = f"UPDATE {name} SET {assignments} WHERE {key} = ?"  # noqa: S608
        """Every written column of the row with the key given last (``update_values``)."""
        self.delete = f"DELETE FROM {name} WHERE {key} = ?"  # noqa: S608

    def insert_sql(self, *extra: str) -> str:
        """The INSERT of one row: the ``values`` of a record, then one for each ``extra``."""
        columns = (*self.written, *extra)
        values = marks(len(columns))
        return f"INSERT INTO {self.name} ({', '.join(columns)}) VALUES ({values})"  # noqa: S608

    def values(self, record: R) -> list[object]:
        """The parameters of ``insert``: every field but the generated ones, then derived."""
        values = [write(getattr(record, name)) for name, write in self._write]
        return values + [derive(record) for derive in self._derived.values()]

    def update_values(self, record: R) -> list[object]:
        """The parameters of ``update``: those of ``insert`` with the key moved last."""
        named = dict(zip(self.written, self.values(record), strict=True))
        key = named.pop(self.key)
        return [*named.values(), key]

    def from_row(self, row: Any) -> R:
        """The record a row of ``columns`` holds."""
        return self.record(**{name: read(row[name]) for name, read in self._read})


def marks(count: int) -> str:
    """``count`` comma-separated ``?`` placeholders."""
    return ", ".join("?" * count)


def _canonical_username(user: UserRecord) -> str:
    return canonical_username(user.username)


CLIENTS = Table("clients", ClientRecord, "client_id")
USERS = Table("users", UserRecord, "id", derived={"canonical_username": _canonical_username})
SESSIONS = Table("sessions", SessionRecord, "id")
CODES = Table("authorization_codes", AuthorizationCodeRecord, "id")
REFRESH_TOKENS = Table("refresh_tokens", RefreshTokenRecord, "id")
LOGIN_COUNTERS = Table("login_failures", LoginCounter, "key")
KEYS = Table("signing_keys", KeyRecord, "kid")
AUDIT = Table("audit_log", AuditEntry, "id", generated=("id", "count"))
