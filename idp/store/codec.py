"""Rows to records and back, for every table, from one description per table.

A ``Table`` names its record class (``idp.store.records``), its key, and what the database
fills in or the store adds; the columns are the record's fields. How a value is written and
read follows the field's annotation: ``tuple[str, ...]`` and ``Mapping`` fields are JSON text,
and each value read is brought to its field's type, since the two drivers hand back 0/1 for
booleans (SQLite) and may hand back ints where a float is stored.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import fields
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from idp.store.records import (
    AuditEntry,
    AuthorizationCodeRecord,
    ClientRecord,
    ConsentRecord,
    DeviceCodeRecord,
    InitialAccessTokenRecord,
    InitialAccessTokenSummary,
    KeyRecord,
    LoginCounter,
    PasskeyRecord,
    PushedRequestRecord,
    RecoveryCode,
    RefreshTokenRecord,
    SessionRecord,
    TotpCredential,
    UserRecord,
    WebAuthnChallengeRecord,
)
from idp.store.usernames import canonical_username

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

R = TypeVar("R", bound="DataclassInstance")

Convert = Callable[[Any], Any]

# By a field's annotation, as ``from __future__ import annotations`` leaves it ("X | None"
# reads as X, and None as None).
_WRITE: dict[str, Convert] = {
    "tuple[str, ...]": lambda values: json.dumps(list(values)),
    "Mapping[str, Any]": lambda detail: json.dumps(dict(detail), sort_keys=True),
}
_READ: dict[str, Convert] = {
    "str": str,
    "bool": bool,
    "int": int,
    "float": float,
    "bytes": bytes,
    "tuple[str, ...]": lambda text: tuple(json.loads(text)),
    "Mapping[str, Any]": json.loads,
}


def _writer(annotation: str) -> Convert:
    return _WRITE.get(annotation, lambda value: value)


def _reader(annotation: str) -> Convert:
    read = _READ[annotation.removesuffix(" | None")]
    return lambda value: None if value is None else read(value)


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
        self._read = [(f.name, _reader(str(f.type))) for f in fields(record)]
        written = [f for f in fields(record) if f.name not in generated]
        self._write = [(f.name, _writer(str(f.type))) for f in written]
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
        values = ", ".join("?" * len(columns))
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


CLIENTS = Table("clients", ClientRecord, "client_id")
USERS = Table(
    "users",
    UserRecord,
    "id",
    derived={"canonical_username": lambda user: canonical_username(user.username)},
)
SESSIONS = Table("sessions", SessionRecord, "id")
CONSENTS = Table("consents", ConsentRecord, "user_id")
PASSKEYS = Table("webauthn_credentials", PasskeyRecord, "credential_id")
CHALLENGES = Table("webauthn_challenges", WebAuthnChallengeRecord, "id")
CODES = Table("authorization_codes", AuthorizationCodeRecord, "id")
INITIAL_ACCESS_TOKENS = Table("initial_access_tokens", InitialAccessTokenRecord, "id")
INITIAL_ACCESS_TOKEN_SUMMARIES = Table("initial_access_tokens", InitialAccessTokenSummary, "id")
"""The same rows read without the token hash, for administrators."""
PUSHED_REQUESTS = Table("pushed_authorization_requests", PushedRequestRecord, "request_uri_hash")
REFRESH_TOKENS = Table("refresh_tokens", RefreshTokenRecord, "id")
LOGIN_COUNTERS = Table("login_failures", LoginCounter, "key")
KEYS = Table("signing_keys", KeyRecord, "kid")
AUDIT = Table("audit_log", AuditEntry, "id", generated=("id", "count"))
TOTP = Table("totp_credentials", TotpCredential, "user_id")
RECOVERY_CODES = Table("recovery_codes", RecoveryCode, "code_hash")
DEVICE_CODES = Table("device_codes", DeviceCodeRecord, "id")
