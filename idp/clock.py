"""The one source of time, injectable so tests move time instead of sleeping."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    """Seconds since the epoch, as a float."""

    def __call__(self) -> float: ...


def system_clock() -> float:
    """The wall clock."""
    return time.time()
