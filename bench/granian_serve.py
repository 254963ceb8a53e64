"""Serve any app factory through the service's own granian launcher.

``idp serve`` runs :func:`idp.http.server.run_server`, which serves ``idp.http.server.APP_FACTORY``.
Pointing that name at another factory serves it with exactly the same granian settings
(loop, HTTP/1 limits, access log off), so the bare apps run on the same server config.

Usage: ``python -m bench.granian_serve MODULE:FACTORY PORT``
"""

from __future__ import annotations

import sys

from idp.http import server


def main(argv: list[str]) -> None:
    """Serve ``argv[0]`` (a factory import string) on 127.0.0.1 port ``argv[1]``."""
    target, port = argv
    if not hasattr(server, "APP_FACTORY") or not hasattr(server, "APP_INTERFACE"):
        raise SystemExit("idp.http.server.APP_FACTORY is gone; update bench/granian_serve.py")
    server.APP_FACTORY = target
    server.APP_INTERFACE = "asgi"  # the bare apps are ASGI apps
    server.run_server(server.ServerOptions(host="127.0.0.1", port=int(port), workers=1))


if __name__ == "__main__":
    main(sys.argv[1:])
