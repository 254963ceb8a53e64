"""A fake clock for tests that move time by hand instead of sleeping."""

from __future__ import annotations

T0 = 1_800_000_000.0


class FakeClock:
    """A clock the test moves by hand; reads ``now`` until told otherwise."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
