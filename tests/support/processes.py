"""Helpers for tests that run real ``idp`` processes: the CLI, ``idp serve``, and a TCP proxy.

``idp serve`` runs as a child process in its own session, with stdout and stderr captured to
files, and is always stopped by its process id (SIGINT, then SIGKILL to its process group).
The :class:`TcpProxy` relays 127.0.0.1 connections to a database and can cut them all.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Coroutine, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
import jwt as pyjwt

IDP = (sys.executable, "-m", "idp")
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
CLI_TIMEOUT = 60.0

T = TypeVar("T")


def child_env(env: Mapping[str, str]) -> dict[str, str]:
    """This process's environment without its own IDP_* settings, plus ``env``."""
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("IDP_")}
    return {**inherited, "PYTHONUNBUFFERED": "1", **env}


def run_idp(
    args: Sequence[str], env: Mapping[str, str], cwd: Path, timeout: float = CLI_TIMEOUT
) -> subprocess.CompletedProcess[str]:
    """Run one ``idp`` command to completion and capture its output."""
    return subprocess.run(
        [*IDP, *args],
        env=child_env(env),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def idp_json(args: Sequence[str], env: Mapping[str, str], cwd: Path) -> Any:
    """Run an ``idp ... --json`` command that must succeed; return its JSON document."""
    done = run_idp([*args, "--json"], env, cwd)
    assert done.returncode == 0, f"idp {' '.join(args)} failed: {done.stderr}"
    return json.loads(done.stdout)


def migrate(env: Mapping[str, str], cwd: Path) -> None:
    """Apply the migrations with ``idp migrate``."""
    done = run_idp(["migrate"], env, cwd)
    assert done.returncode == 0, f"idp migrate failed: {done.stderr}"


@dataclass
class ServeProcess:
    """A running ``idp serve`` child process."""

    process: subprocess.Popen[bytes]
    url: str
    stdout_path: Path
    stderr_path: Path

    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def output(self) -> str:
        """Everything the server wrote so far, stdout then stderr."""
        return self.stdout() + self.stderr()

    def alive(self) -> bool:
        return self.process.poll() is None

    def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        """Wait until ``/readyz`` answers 200; fail early if the process exits."""
        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=2.0) as http:
            while True:
                if not self.alive():
                    raise AssertionError(
                        f"idp serve exited with {self.process.returncode}:\n{self.output()}"
                    )
                with contextlib.suppress(httpx.HTTPError):
                    if http.get(f"{self.url}/readyz").status_code == 200:
                        return
                if time.monotonic() > deadline:
                    raise AssertionError(
                        f"idp serve was not ready in {timeout} s:\n{self.output()}"
                    )
                time.sleep(0.05)

    def stop(self, timeout: float = STOP_TIMEOUT) -> int | None:
        """Interrupt the server and wait; kill its whole process group if it lingers."""
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGINT)
            self._wait_without_reaping(timeout)
            # Not reaped yet, so the process group id is still this server's: no worker of
            # it may outlive the test.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout)
        return self.process.returncode

    def _wait_without_reaping(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        flags = os.WEXITED | os.WNOWAIT | os.WNOHANG
        while time.monotonic() < deadline:
            try:
                if os.waitid(os.P_PID, self.process.pid, flags) is not None:
                    return
            except ChildProcessError:
                return
            time.sleep(0.02)


def start_serve(
    env: Mapping[str, str], cwd: Path, port: int, *args: str, name: str = "serve"
) -> ServeProcess:
    """Start ``idp serve`` on 127.0.0.1:port in ``cwd`` (not waiting for it to be ready)."""
    stdout_path = cwd / f"{name}.stdout.log"
    stderr_path = cwd / f"{name}.stderr.log"
    with stdout_path.open("wb") as out, stderr_path.open("wb") as err:
        process = subprocess.Popen(
            [*IDP, "serve", "--host", "127.0.0.1", "--port", str(port), *args],
            env=child_env(env),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            start_new_session=True,
        )
    return ServeProcess(process, f"http://127.0.0.1:{port}", stdout_path, stderr_path)


@contextlib.contextmanager
def serving(
    env: Mapping[str, str], cwd: Path, port: int, *args: str, name: str = "serve"
) -> Iterator[ServeProcess]:
    """A ready ``idp serve``, stopped on the way out whatever happens."""
    server = start_serve(env, cwd, port, *args, name=name)
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


def wait_for(
    check: Callable[[], T], timeout: float, interval: float = 0.05, message: str = "condition"
) -> T:
    """Call ``check()`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{message} not met within {timeout} s (last: {result!r})")
        time.sleep(interval)


class TcpProxy:
    """A TCP relay from 127.0.0.1:port to ``upstream`` that can be cut and restored.

    ``cut()`` closes every relayed connection; while cut, new connections are either closed
    as soon as they are accepted (``refuse=False``) or refused because nothing listens
    (``refuse=True``). ``restore()`` relays again on the same port.
    """

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.port = 0
        self.relayed = 0
        self._cut = False
        self._server: asyncio.Server | None = None
        self._transports: set[asyncio.BaseTransport] = set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="tcp-proxy", daemon=True
        )

    def __enter__(self) -> TcpProxy:
        self._thread.start()
        self._call(self._listen())
        return self

    def __exit__(self, *exc: object) -> None:
        self._call(self._shutdown())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._loop.close()

    def cut(self, refuse: bool = False) -> None:
        """Drop every open connection and stop relaying new ones."""
        self._call(self._cut_all(refuse))

    def restore(self) -> None:
        """Relay new connections again."""
        self._call(self._restore())

    def _call(self, work: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(work, self._loop).result(10)

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(
            self._relay, "127.0.0.1", self.port, reuse_address=True
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def _cut_all(self, refuse: bool) -> None:
        self._cut = True
        if refuse and self._server is not None:
            self._server.close()
            self._server = None
        for transport in list(self._transports):
            transport.abort()
        self._transports.clear()

    async def _restore(self) -> None:
        self._cut = False
        if self._server is None:
            await self._listen()

    async def _shutdown(self) -> None:
        await self._cut_all(refuse=True)

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._cut:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            writer.transport.abort()
            return
        self.relayed += 1
        pair = (writer.transport, up_writer.transport)
        self._transports.update(pair)
        pumps = [
            asyncio.create_task(_pump(reader, up_writer)),
            asyncio.create_task(_pump(up_reader, writer)),
        ]
        try:
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in pumps:
                task.cancel()
            await asyncio.gather(*pumps, return_exceptions=True)
            for transport in pair:
                transport.abort()
                self._transports.discard(transport)


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()


def connections_by_pid(port: int, pids: Sequence[int]) -> dict[int, int]:
    """How many established TCP connections to 127.0.0.1:port each process holds (Linux)."""
    owner: dict[str, int] = {}
    for pid in pids:
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{pid}/fd"):
                with contextlib.suppress(OSError):
                    link = os.readlink(f"/proc/{pid}/fd/{fd}")
                    if link.startswith("socket:["):
                        owner[link[len("socket:[") : -1]] = pid
    counts = dict.fromkeys(pids, 0)
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local_port = int(fields[1].rsplit(":", 1)[1], 16)
        established = fields[3] == "01"
        if local_port == port and established and fields[9] in owner:
            counts[owner[fields[9]]] += 1
    return counts


AUDIENCE = "https://api.example.com"
SCOPE = "read write"


def create_client(env: dict[str, str], cwd: Path, name: str, alg: str) -> dict[str, Any]:
    """A confidential client_credentials client made with ``idp clients create``."""
    return idp_json(
        [
            "clients",
            "create",
            "--name",
            name,
            "--scope",
            SCOPE,
            "--audience",
            AUDIENCE,
            "--access-token-alg",
            alg,
        ],
        env,
        cwd,
    )


def client_basic(client: dict[str, Any]) -> dict[str, str]:
    """HTTP Basic credentials, form-urlencoded first (RFC 6749 section 2.3.1)."""
    raw = f"{quote(client['client_id'], safe='')}:{quote(client['client_secret'], safe='')}"
    return {"Authorization": "Basic " + base64.b64encode(raw.encode()).decode()}


def header_of(token: str) -> dict[str, Any]:
    header: dict[str, Any] = pyjwt.get_unverified_header(token)
    return header
