"""Logging set-up: one line per record on stderr, never secrets or tokens.

``plain`` (the default) writes text lines; ``json`` (IDP_LOG_FORMAT) writes one JSON object
per line with ``time``, ``level``, ``event`` and, for an event that has them, its fields.
"""

from __future__ import annotations

import json
import logging
import sys
import time
import traceback
from typing import Any

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


FIELDS_ATTRIBUTE = "fields"
"""A record's structured fields: ``log.info("request", extra={"fields": {...}})``."""


def iso_now(at: float | None = None) -> str:
    """A UTC time with milliseconds, as in ``2026-12-03T12:00:00.123Z``."""
    now = time.time() if at is None else at
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z"


def json_line(level: str, event: str, **fields: Any) -> str:
    """One log line in the JSON format."""
    return json.dumps(
        {"time": iso_now(), "level": level, "event": event, **fields},
        ensure_ascii=False,
        default=str,
    )


class JsonFormatter(logging.Formatter):
    """One JSON object per record; an exception adds ``error`` (``Type: message``) and its
    ``traceback`` as one string."""

    def format(self, record: logging.LogRecord) -> str:
        fields: dict[str, Any] = dict(getattr(record, FIELDS_ATTRIBUTE, None) or {})
        fields.setdefault("message", record.getMessage())
        fields["logger"] = record.name
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            fields["error"] = f"{type(exc).__name__}: {exc}"
            if not record.name.startswith(LIBRARY_LOGGERS):
                fields["traceback"] = "".join(traceback.format_exception(exc)).rstrip()
        event = fields.pop("event", None) or "log"
        document = {
            "time": iso_now(record.created),
            "level": record.levelname.lower(),
            "event": event,
            **fields,
        }
        return json.dumps(document, ensure_ascii=False, default=str)


def formatter(log_format: str, library: bool = False) -> logging.Formatter:
    """The formatter for ``plain`` or ``json`` records (``library``: one line, no traceback)."""
    if log_format == "json":
        return JsonFormatter()
    return OneLineFormatter(FORMAT) if library else logging.Formatter(FORMAT)


def granian_log_config(log_format: str) -> dict[str, Any] | None:
    """granian's own logging (start, workers, shut-down) in the JSON format, or None to keep
    its default text."""
    if log_format != "json":
        return None
    handler = {"formatter": "json", "class": "logging.StreamHandler", "stream": "ext://sys.stdout"}
    return {
        "formatters": {"json": {"()": "idp.logs.JsonFormatter"}},
        "handlers": {"console": handler, "access": handler},
        "loggers": {
            "_granian": {"handlers": ["console"], "level": "INFO", "propagate": False},
            "granian.access": {"handlers": ["access"], "level": "INFO", "propagate": False},
        },
    }


def configure_logging(level: int = logging.INFO, log_format: str = "plain") -> None:
    """Send the service's logs to stderr; a later call only changes the format."""
    root = logging.getLogger("idp")
    if root.handlers:
        for handler in root.handlers:
            handler.setFormatter(formatter(log_format))
        for name in LIBRARY_LOGGERS:
            for handler in logging.getLogger(name).handlers:
                handler.setFormatter(formatter(log_format, library=True))
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(log_format))
    root.addHandler(handler)
    root.setLevel(level)
    root.propagate = False
    # A library's retries are expected noise during an outage: one line each, no traceback.
    library_handler = logging.StreamHandler(sys.stderr)
    library_handler.setFormatter(formatter(log_format, library=True))
    for name in LIBRARY_LOGGERS:
        library = logging.getLogger(name)
        library.addHandler(library_handler)
        library.setLevel(max(level, logging.WARNING))
        library.propagate = False
