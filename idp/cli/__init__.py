"""The ``idp`` admin command: an adapter over the admin service, :mod:`idp.admin`.

Every command reads the same ``IDP_*`` environment as the server. Errors print one line on
stderr and exit 1 (2 for usage and configuration errors); with ``--json`` stdout holds
exactly one JSON document.

- ``main``: the entry point (``idp`` and ``python -m idp``), settings, errors, exit codes.
- ``base``: the shared pieces: running an operation as ``cli:<login name>``, output.
- ``clients``, ``users``, ``keys``, ``audit``: one module per command group, each adding its
  commands to the parser and calling one admin operation per command.
- ``server``: ``migrate``, ``serve`` and ``generate-kek``, which are not admin operations.
"""

from idp.cli.main import main

__all__ = ["main"]
