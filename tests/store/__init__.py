"""The store conformance suite: the one list of what every storage backend must do.

Each test here works on a store directly, through the ``Store`` protocol (``idp.store.base``)
or the thin functions over it (refresh-token rotation, key-ring changes, the throttle's
reservations, housekeeping collectors), with no HTTP server and no CLI. It takes the ``store``
and ``settings`` fixtures of ``tests/conftest.py``, parametrised over SQLite and PostgreSQL:
every test runs, unchanged, against both backends, as Dex's ``storage/conformance`` does. A
new backend is done when it passes all of them. Modules are grouped by concern:

- ``test_migrations.py``: schema status, idempotent and concurrent migrations, data upgrades.
- ``test_clients_users.py``: clients and users, uniqueness, updates audited in one transaction.
- ``test_keys.py``: the key ring, its version, one active key per algorithm, concurrent
  rotations from several store instances, the key-encryption key checked under the ring's lock.
- ``test_sessions_codes.py``: browser sessions, authorization codes (one winner of concurrent
  redemptions), consents.
- ``test_admin_lookups.py``: consents by user, client or both; a session by its public sid.
- ``test_refresh_tokens.py``: refresh-token rotation and families, including races (grace 0:
  exactly one winner).
- ``test_revocation.py``: revoked access tokens, grants, sessions, users and clients.
- ``test_login_counters.py``: the sign-in throttle's counters, reserved atomically even from
  two store objects at once.
- ``test_audit.py``: the audit trail, written in the same transaction as the change.
- ``test_housekeeping.py``: expired rows collected in batches, live ones kept.

Concurrency is part of the contract: tests open several store objects on one database, as
separate server processes would, and race them with ``asyncio.gather``. Record factories and
seeding helpers live in ``tests/support/``.
"""
