"""Runs the app under granian with limits that protect the service from slow or huge requests.

granian was chosen as the default server from bench/token_endpoint (see bench/README.md):
throughput within run-to-run noise of uvicorn, a lower p99 on ES256 tokens, and hardening
uvicorn lacks. Its RSGI interface serves the busiest endpoints with less work per request
than ASGI (bench/compare); the rest of the app runs over it as ASGI (idp.http.rsgi).
Its HTTP/1 parser answers 431 to request heads over the buffer limit and closes
connections whose head does not arrive within the header timeout, counted from the moment
of connection.
"""

from __future__ import annotations

import errno
import os
import shutil
import socket
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

APP_FACTORY = "idp.http.asgi:rsgi_app_from_environment"
APP_INTERFACE = "rsgi"
"""granian's interface for APP_FACTORY's app: RSGI (see idp.http.rsgi) or ASGI."""
MAX_HEAD_BYTES = 16 * 1024
HEADER_READ_TIMEOUT_MS = 10_000
METRICS_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"


@dataclass(frozen=True)
class ServerOptions:
    """Where and how to listen."""

    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    tls_cert: str | None = None
    tls_key: str | None = None
    log_config: dict[str, Any] | None = None
    """granian's logging configuration (``logging.config.dictConfig``); None: its own."""


class ListenError(Exception):
    """The address cannot be listened on (in use, not local, not permitted); one line."""


def check_address_free(host: str, port: int) -> None:
    """Raise ListenError unless this process could bind ``host:port`` on its own.

    granian's workers bind with SO_REUSEPORT, so a second server on the same port would
    start silently beside the first and share its connections. A probe bound without
    SO_REUSEPORT is refused by Linux while anyone listens there, whatever their options;
    SO_REUSEADDR lets it past connections of an earlier run still in TIME_WAIT.
    """
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(address)
    except socket.gaierror as exc:
        raise ListenError(f"cannot listen on {where}: {exc.strerror}") from None
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise ListenError(
                f"cannot listen on {where}: the port is in use (another idp serve or another "
                "program); stop it or choose another --port"
            ) from None
        raise ListenError(f"cannot listen on {where}: {exc.strerror or exc}") from None


def run_server(options: ServerOptions) -> None:
    """Serve until interrupted; each worker builds the app from the same environment.

    With several workers and no PROMETHEUS_MULTIPROC_DIR of the operator's, the workers
    share their metrics through a fresh directory, removed when the server stops.
    """
    shared = None
    if options.workers > 1 and not os.environ.get(METRICS_DIR_VARIABLE):
        shared = tempfile.mkdtemp(prefix="idp-metrics-")
        os.environ[METRICS_DIR_VARIABLE] = shared  # read by each worker it starts
    try:
        _serve(options)
    finally:
        if shared is not None:
            shutil.rmtree(shared, ignore_errors=True)


def _serve(options: ServerOptions) -> None:
    from granian import Granian
    from granian.constants import HTTPModes, Interfaces, Loops
    from granian.http import HTTP1Settings

    Granian(
        target=APP_FACTORY,
        factory=True,
        address=options.host,
        port=options.port,
        interface=Interfaces(APP_INTERFACE),
        websockets=False,
        # HTTP/1 only: with "auto", protocol detection runs before the header timer starts,
        # so a client that connects and sends nothing would never be closed.
        http=HTTPModes.http1,
        workers=options.workers,
        loop=Loops.auto,
        http1_settings=HTTP1Settings(
            header_read_timeout=HEADER_READ_TIMEOUT_MS,
            keep_alive=True,
            max_buffer_size=MAX_HEAD_BYTES,
        ),
        ssl_cert=Path(options.tls_cert) if options.tls_cert else None,
        ssl_key=Path(options.tls_key) if options.tls_key else None,
        respawn_failed_workers=True,
        log_access=False,
        log_dictconfig=options.log_config,
    ).serve()
