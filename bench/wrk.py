"""The load generator: wrk from Debian, pinned to its own core, and its report parsed."""

from __future__ import annotations

import os
import re
import resource
import shutil
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

SCRIPT = Path(__file__).resolve().parent / "requests.lua"
APT_TIMEOUT = 600
_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}
_DURATION = r"([\d.]+)(us|ms|s|m)"


@dataclass(frozen=True, kw_only=True)
class Request:
    """What every wrk request carries, and what every answer must be.

    A GET by default (conditional with ``if_none_match``); with ``basic`` set, a POST
    authenticated by client_secret_basic whose form is ``body`` (default: a
    client_credentials token request), or with ``bodies`` set, the next line of that file
    for each request (for single-use grants: one code or refresh token per request; needs
    one wrk thread). With ``header_lines`` set, each request also carries the next
    ``Name: value`` line of that file as a header (one DPoP proof per request; one wrk
    thread too). Any answer whose status is not ``status``, or (with ``expect`` set)
    whose body lacks that text, counts as a failure.
    """

    basic: str | None = None
    body: str | None = None
    bodies: Path | None = None
    header_lines: Path | None = None
    expect: str | None = None
    if_none_match: str | None = None
    status: int = 200


@dataclass(frozen=True)
class WrkResult:
    """One wrk run: throughput, latency percentile, and everything that went wrong."""

    requests_per_second: float
    requests: int
    p99_ms: float
    non_2xx_3xx: int
    non_200: int
    socket_errors: int
    load_cpu_share: float

    @property
    def ok(self) -> bool:
        """Every answer was a 200 and no socket failed."""
        return (
            self.requests > 0
            and self.non_200 == 0
            and self.non_2xx_3xx == 0
            and (self.socket_errors == 0)
        )

    @property
    def status(self) -> str:
        """ "ok", or what went wrong, for progress lines."""
        if self.ok:
            return "ok"
        return f"FAILED (non-200 {self.non_200}, socket errors {self.socket_errors})"

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


def ensure_wrk() -> str:
    """The path of wrk, installed from Debian with apt-get when missing (needs root)."""
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() != 0:
        raise RuntimeError("wrk is missing; install it with: sudo apt-get install -y wrk")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", "wrk"]
    if subprocess.run(install, env=env, timeout=APT_TIMEOUT, check=False).returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], env=env, timeout=APT_TIMEOUT, check=True)
        subprocess.run(install, env=env, timeout=APT_TIMEOUT, check=True)
    found = shutil.which("wrk")
    if not found:
        raise RuntimeError("apt-get installed wrk but it is not on PATH")
    return found


def _milliseconds(value: str, unit: str) -> float:
    return float(value) * _UNITS[unit]


def _count(pattern: str, text: str) -> int:
    match = re.search(pattern, text)
    return int(match.group(1)) if match else 0


def parse(text: str, load_cpu_share: float = 0.0) -> WrkResult:
    """Read a ``wrk --latency`` report (and our Lua script's non-200 count)."""
    rate = re.search(r"^Requests/sec:\s+([\d.]+)", text, re.MULTILINE)
    total = re.search(r"^\s*(\d+) requests in", text, re.MULTILINE)
    p99 = re.search(r"^\s*99(?:\.0+)?%\s+" + _DURATION, text, re.MULTILINE)
    non_200 = re.search(r"^bench-non-200: (\d+)", text, re.MULTILINE)
    if not (rate and total and p99 and non_200):
        raise ValueError(f"unexpected wrk output:\n{text}")
    sockets = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text
    )
    return WrkResult(
        requests_per_second=float(rate.group(1)),
        requests=int(total.group(1)),
        p99_ms=_milliseconds(p99.group(1), p99.group(2)),
        non_2xx_3xx=_count(r"Non-2xx or 3xx responses: (\d+)", text),
        non_200=int(non_200.group(1)),
        socket_errors=sum(int(n) for n in sockets.groups()) if sockets else 0,
        load_cpu_share=load_cpu_share,
    )


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(
    wrk: str,
    url: str,
    *,
    duration: float,
    connections: int,
    threads: int,
    core: int | str,
    request: Request = Request(),
) -> WrkResult:
    """Load ``url`` for ``duration`` seconds from ``core`` (a taskset CPU list) with ``request``."""
    argv = [
        "taskset",
        "-c",
        str(core),
        wrk,
        f"--threads={threads}",
        f"--connections={connections}",
        f"--duration={max(1, round(duration))}s",
        "--timeout=5s",
        "--latency",
        f"--script={SCRIPT}",
        url,
    ]
    env = {
        **os.environ,
        "BENCH_BASIC": request.basic or "",
        "BENCH_BODY": request.body or "",
        "BENCH_BODIES": str(request.bodies or ""),
        "BENCH_HEADER_LINES": str(request.header_lines or ""),
        "BENCH_EXPECT": request.expect or "",
        "BENCH_IF_NONE_MATCH": request.if_none_match or "",
        "BENCH_STATUS": str(request.status),
    }
    cpu_before, started = _children_cpu(), time.monotonic()
    result = subprocess.run(
        argv, env=env, capture_output=True, text=True, timeout=duration + 60, check=False
    )
    load_share = (_children_cpu() - cpu_before) / max(time.monotonic() - started, 1e-9)
    if result.returncode != 0:
        raise RuntimeError(f"wrk failed ({result.returncode}): {result.stderr.strip()}")
    return parse(result.stdout, load_share)
