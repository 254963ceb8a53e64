"""Signing keys: material, lifecycle transitions, the in-memory ring, the scheduler, and the
ring changes the server makes itself (``changes``); an administrator's key operations are in
:mod:`idp.admin.keys`."""
