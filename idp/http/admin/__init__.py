"""The admin API: JSON over HTTP for ``idp:admin`` tokens, an adapter over :mod:`idp.admin`.

- ``auth``: who may call it (our own machine-client access tokens with ``idp:admin``).
- ``routing``: an :class:`~idp.http.admin.routing.Operation` per endpoint, error answers,
  the audit of refused calls, and the routes made from the table.
- ``keys``, ``clients``, ``users``, ``consents``, ``sessions``, ``audit``: each group's
  handlers and operations; a handler reads its input, calls one admin operation and renders
  the outcome.
- ``operations``: the one table of every operation; ``openapi``: its OpenAPI 3.1 document.
"""
