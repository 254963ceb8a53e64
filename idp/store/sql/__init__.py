"""The one SQL implementation of the Store protocol, for every dialect.

Each method is written once, with ``?`` placeholders, and runs through a dialect
(``idp.store.dialects``) that supplies the driver, error mapping, locking, change
notification and the few SQL spellings that differ between SQLite and PostgreSQL.
A method that writes more than one statement runs them in one transaction. The methods
are grouped by concern, one module each, over ``core`` (the dialect, the schema, helpers):

- ``accounts``: clients, users, consents;
- ``tokens``: browser sessions, authorization codes, refresh tokens, revocations;
- ``keys``: the signing-key ring;
- ``audit``: the audit trail and the login throttle's counters;
- ``passkeys``: WebAuthn user handles, credentials and challenges.
- ``factors``: second factors (TOTP, recovery codes) and what a session has proved.
- ``dpop``: the DPoP proofs already accepted (RFC 9449 replay).
- ``registration``: initial access tokens for dynamic client registration (RFC 7591).
- ``device_codes``: device authorization requests (RFC 8628).
"""

from __future__ import annotations

from idp.store.sql.accounts import Accounts
from idp.store.sql.audit import AuditAndThrottle
from idp.store.sql.device_codes import DeviceCodes
from idp.store.sql.dpop import DpopProofs
from idp.store.sql.factors import Factors
from idp.store.sql.keys import Keys
from idp.store.sql.passkeys import Passkeys
from idp.store.sql.pushed_requests import PushedRequests
from idp.store.sql.registration import InitialAccessTokens
from idp.store.sql.tokens import Tokens


class SqlStore(
    Accounts,
    Tokens,
    Keys,
    AuditAndThrottle,
    Passkeys,
    Factors,
    PushedRequests,
    DpopProofs,
    InitialAccessTokens,
    DeviceCodes,
):
    """Store backed by a SQL database, through the dialect that speaks to it."""
