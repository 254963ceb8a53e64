"""Logging set-up: one line per record on stderr, never secrets or tokens."""

from __future__ import annotations

import logging
import sys

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Libraries whose warnings reach the service's stderr, in the same one-line form.
LIBRARY_LOGGERS = ("asyncpg",)


class OneLineFormatter(logging.Formatter):
    """One line per record: an exception is summed up as ``Type: message``, no traceback."""

    def formatException(self, ei: object) -> str:
        exc = ei[1] if isinstance(ei, tuple) else None
        return f"{type(exc).__name__}: {exc}" if exc is not None else ""

    def format(self, record: logging.LogRecord) -> str:
        return " ".join(super().format(record).splitlines())


def configure_logging(level: int = logging.INFO) -> None:
    """Send the service's logs to stderr once, however often this is called."""
    root = logging.getLogger("idp")
    if root.handlers:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(FORMAT))
    root.addHandler(handler)
    root.setLevel(level)
    root.propagate = False
    # A library's retries are expected noise during an outage: one line each, no traceback.
    library_handler = logging.StreamHandler(sys.stderr)
    library_handler.setFormatter(OneLineFormatter(FORMAT))
    for name in LIBRARY_LOGGERS:
        library = logging.getLogger(name)
        library.addHandler(library_handler)
        library.setLevel(max(level, logging.WARNING))
        library.propagate = False
