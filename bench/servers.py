"""Start and stop one-worker HTTP servers pinned to one core, and measure their CPU time."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.service import ROOT, VENV_BIN

SERVERS = ("granian", "uvicorn")
SERVICE_FACTORY = "idp.http.asgi:app_from_environment"
BARE_FACTORY = "bench.bare_app:create_app"
READY_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Server:
    """A running server process group and where it listens."""

    name: str
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cpu_seconds(self) -> float:
        """CPU time so far of every live process in the server's process group."""
        return process_group_cpu(self.process.pid)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def command(server: str, factory: str, port: int, *, service: bool) -> list[str]:
    """The command line that serves ``factory`` with one worker on 127.0.0.1:``port``.

    Under granian the service runs through ``idp serve`` itself; the bare app runs through
    the same launcher (bench.granian_serve). uvicorn gets the same flags for both.
    """
    if server == "granian":
        if service:
            return [str(VENV_BIN / "idp"), "serve", "--port", str(port)]
        python = str(VENV_BIN / "python")
        return [python, "-m", "bench.granian_serve", factory, str(port)]
    if server == "uvicorn":
        return [
            str(VENV_BIN / "uvicorn"),
            "--factory",
            factory,
            "--loop",
            "uvloop",
            "--http",
            "httptools",
            "--workers",
            "1",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-access-log",
            "--log-level",
            "warning",
        ]
    raise ValueError(f"unknown server {server!r}")


def process_group_cpu(pgid: int) -> float:
    """User plus system CPU seconds of the live processes in process group ``pgid``."""
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[2]) == pgid:
            total += int(fields[11]) + int(fields[12])
    return total / CLOCK_TICKS


def core_jiffies(core: int) -> tuple[int, int]:
    """Busy and total clock ticks of one core so far (from /proc/stat)."""
    for line in Path("/proc/stat").read_text().splitlines():
        name, *values = line.split()
        if name == f"cpu{core}":
            ticks = [int(v) for v in values[:8]]
            idle = ticks[3] + ticks[4]
            return sum(ticks) - idle, sum(ticks)
    raise RuntimeError(f"no cpu{core} line in /proc/stat")


@dataclass(frozen=True)
class CpuUse:
    """How busy the server core was during a run, and how much of it the server used."""

    server_share: float
    core_busy_share: float


class CpuMeter:
    """Measures a server's CPU share and its core's busy share between start and stop."""

    def __init__(self, server: Server, core: int) -> None:
        self._server = server
        self._core = core
        self._cpu = server.cpu_seconds()
        self._started = time.monotonic()
        self._busy, self._total = core_jiffies(core)

    def stop(self) -> CpuUse:
        elapsed = max(time.monotonic() - self._started, 1e-9)
        busy, total = core_jiffies(self._core)
        return CpuUse(
            server_share=(self._server.cpu_seconds() - self._cpu) / elapsed,
            core_busy_share=(busy - self._busy) / max(total - self._total, 1),
        )


def _get_status(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310
            status: int = response.status
            return status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return None


def wait_ready(server: Server, path: str = "/jwks.json") -> None:
    """Wait until ``path`` answers 200; fail early if the server exits."""
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"{server.name} exited at start:\n{tail(server.log)}")
        if _get_status(server.base_url + path) == 200:
            return
        time.sleep(0.2)
    raise RuntimeError(f"{server.name} not ready after {READY_TIMEOUT:.0f}s:\n{tail(server.log)}")


def tail(log: Path, lines: int = 20) -> str:
    """The last lines of a log file."""
    with contextlib.suppress(OSError):
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    return ""


def start(
    name: str,
    argv: Sequence[str],
    port: int,
    env: dict[str, str],
    log: Path,
    core: int | str | None,
    *,
    preexec_fn: Callable[[], object] | None = None,
) -> Server:
    """Start ``argv`` in a new process group, output to ``log``.

    Pinned to ``core`` (a core, or a taskset CPU list such as "0-1") with taskset unless it
    is None (then free to use every core); ``preexec_fn`` runs in the child before ``argv``
    starts (e.g. to set its priority).
    """
    pin = ["taskset", "-c", str(core)] if core is not None else []
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*pin, *argv],
            env=env,
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=preexec_fn,
        )
    return Server(name, process, port, log)


def stop(server: Server) -> None:
    """Stop the server's whole process group: SIGTERM, then SIGKILL if it lingers."""
    if server.process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            server.process.wait(timeout=STOP_TIMEOUT)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(server.process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        server.process.wait(timeout=STOP_TIMEOUT)


@contextlib.contextmanager
def serving(
    name: str,
    argv: Sequence[str],
    port: int,
    env: dict[str, str],
    log: Path,
    core: int | str,
    ready_path: str = "/jwks.json",
) -> Iterator[Server]:
    """Start a server, wait until ``ready_path`` answers, yield it, and always stop it after."""
    server = start(name, argv, port, env, log, core)
    try:
        wait_ready(server, ready_path)
        yield server
    finally:
        stop(server)
