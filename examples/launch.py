"""Start the whole example: the IdP, its clients and a demo user, app A, app B and the notes API.

``examples/run`` calls :func:`main`; tests call :func:`running_demo`. Every part is a real
process on 127.0.0.1 (``idp serve``, and uvicorn for the apps and the API), started in its
own session and stopped by its process id.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from idp.config import new_key_encryption_key

PYTHON = sys.executable
ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT = 30.0
DEMO_USERNAME = "demo"
API_SCOPE = "notes:read"


@dataclass(frozen=True)
class Ports:
    """Where each part listens on 127.0.0.1."""

    idp: int = 8000
    app_a: int = 8001
    app_b: int = 8002
    api: int = 8003


@dataclass
class Process:
    """A child process with its output in a log file."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 10.0) -> None:
        """SIGINT, then SIGKILL to its process group, so no worker of it outlives it."""
        if self.popen.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.popen.send_signal(signal.SIGINT)
            self._wait_without_reaping(timeout)
            # Not reaped yet, so the process group id is still this child's.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.popen.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout)

    def _wait_without_reaping(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if os.waitid(os.P_PID, self.popen.pid, os.WEXITED | os.WNOWAIT | os.WNOHANG):
                    return
            except ChildProcessError:
                return
            time.sleep(0.05)


@dataclass
class Demo:
    """The running example: URLs, the demo user's credentials, the clients and processes."""

    workdir: Path
    ports: Ports
    username: str
    password: str
    clients: dict[str, dict[str, Any]]
    processes: list[Process] = field(default_factory=list)

    @property
    def idp_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.idp}"

    @property
    def app_a_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.app_a}"

    @property
    def app_b_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.app_b}"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.api}"

    def logs(self) -> str:
        """Every process's output, for a failing test to show."""
        return "\n".join(f"--- {p.name} ---\n{p.output()}" for p in self.processes)

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()


def _child_env(extra: Mapping[str, str]) -> dict[str, str]:
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(("IDP_", "EXAMPLE_"))}
    pythonpath = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    return {**inherited, "PYTHONUNBUFFERED": "1", "PYTHONPATH": pythonpath, **extra}


def idp_command(args: Sequence[str], env: Mapping[str, str], workdir: Path, stdin: str = "") -> Any:
    """Run ``idp ARGS --json`` to completion; return its JSON document."""
    done = subprocess.run(
        [PYTHON, "-m", "idp", *args, "--json"],
        env=_child_env(env),
        cwd=workdir,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"idp {args[0]} {args[1]} failed: {done.stderr.strip()}")
    return json.loads(done.stdout)


def _spawn(name: str, argv: Sequence[str], env: Mapping[str, str], workdir: Path) -> Process:
    log_path = workdir / f"{name}.log"
    with log_path.open("wb") as log:
        popen = subprocess.Popen(
            list(argv),
            env=_child_env(env),
            cwd=workdir,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Process(name, popen, log_path)


def _wait_ready(process: Process, url: str, timeout: float = START_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=2.0) as http:
        while True:
            if process.popen.poll() is not None:
                raise RuntimeError(f"{process.name} exited:\n{process.output()}")
            with contextlib.suppress(httpx.HTTPError):
                if http.get(url).status_code < 500:
                    return
            if time.monotonic() > deadline:
                raise RuntimeError(f"{process.name} did not answer {url}:\n{process.output()}")
            time.sleep(0.1)


def register(
    idp_env: Mapping[str, str], workdir: Path, app_urls: Mapping[str, str], api_audience: str
) -> dict[str, dict[str, Any]]:
    """Create app A's and app B's confidential clients; app A's tokens are for the API.

    ``app_urls`` maps ``"a"`` and ``"b"`` to each app's public base URL.
    """
    clients: dict[str, dict[str, Any]] = {}
    for key, name in (("a", "App A"), ("b", "App B")):
        base = app_urls[key]
        args = [
            "clients", "create", "--name", name,
            "--redirect-uri", f"{base}/callback",
            "--post-logout-redirect-uri", f"{base}/signed-out",
            "--backchannel-logout-uri", f"{base}/backchannel-logout",
            "--grant-type", "authorization_code",
        ]  # fmt: skip
        if key == "a":
            args += ["--scope", API_SCOPE, "--audience", api_audience]
        clients[key] = idp_command(args, idp_env, workdir)
    return clients


def create_demo_user(idp_env: Mapping[str, str], workdir: Path) -> str:
    """Create the user ``demo`` with a fresh random password; return the password."""
    password = secrets.token_urlsafe(12)
    idp_command(
        ["users", "create", "--username", DEMO_USERNAME, "--password-stdin",
         "--name", "Demo User", "--email", "demo@example.org"],
        idp_env, workdir, stdin=password + "\n",
    )  # fmt: skip
    return password


def start(workdir: Path, ports: Ports, database_url: str | None = None) -> Demo:
    """Set up and start every part; the caller must call ``stop()`` on the result."""
    issuer = f"http://127.0.0.1:{ports.idp}"
    idp_env = {
        "IDP_ISSUER": issuer,
        "IDP_DATABASE_URL": database_url or f"sqlite:///{workdir}/idp.db",
        "IDP_KEY_ENCRYPTION_KEY": new_key_encryption_key(),
        # The apps' back-channel logout URIs are on 127.0.0.1, which the IdP calls only in
        # development, when this is set.
        "IDP_ALLOW_PRIVATE_BACKCHANNEL": "1",
    }
    subprocess.run(
        [PYTHON, "-m", "idp", "migrate"],
        env=_child_env(idp_env),
        cwd=workdir,
        check=True,
        capture_output=True,
        timeout=120,
    )
    app_urls = {"a": f"http://127.0.0.1:{ports.app_a}", "b": f"http://127.0.0.1:{ports.app_b}"}
    clients = register(idp_env, workdir, app_urls, f"http://127.0.0.1:{ports.api}")
    password = create_demo_user(idp_env, workdir)
    demo = Demo(workdir, ports, DEMO_USERNAME, password, clients)
    try:
        idp = _spawn(
            "idp",
            [PYTHON, "-m", "idp", "serve", "--host", "127.0.0.1", "--port", str(ports.idp)],
            idp_env,
            workdir,
        )
        demo.processes.append(idp)
        _wait_ready(idp, f"{issuer}/readyz")
        common = {"EXAMPLE_ISSUER": issuer, "EXAMPLE_API_AUDIENCE": f"http://127.0.0.1:{ports.api}"}
        parts = [
            ("api", "examples.api:from_environ", ports.api, "/healthz", {}),
            (
                "app-a",
                "examples.app_a:from_environ",
                ports.app_a,
                "/",
                app_env(clients["a"], app_urls["a"], f"http://127.0.0.1:{ports.api}"),
            ),
            (
                "app-b",
                "examples.app_b:from_environ",
                ports.app_b,
                "/",
                app_env(clients["b"], app_urls["b"]),
            ),
        ]
        for name, factory, port, _, extra in parts:
            argv = [PYTHON, "-m", "uvicorn", "--factory", factory, "--host", "127.0.0.1"]
            argv += ["--port", str(port), "--log-level", "warning"]
            demo.processes.append(_spawn(name, argv, {**common, **extra}, workdir))
        for process, (_, _, port, path, _) in zip(demo.processes[1:], parts, strict=True):
            _wait_ready(process, f"http://127.0.0.1:{port}{path}")
    except BaseException:
        demo.stop()
        raise
    return demo


def app_env(client: Mapping[str, Any], base_url: str, api_url: str | None = None) -> dict[str, str]:
    """One app's ``EXAMPLE_*`` settings for its registered ``client``.

    With ``api_url`` the app also calls the API there, asking for the API's scope.
    """
    env = {
        "EXAMPLE_BASE_URL": base_url,
        "EXAMPLE_CLIENT_ID": client["client_id"],
        "EXAMPLE_CLIENT_SECRET": client["client_secret"],
        "EXAMPLE_SESSION_SECRET": secrets.token_urlsafe(32),
    }
    if api_url is not None:
        env["EXAMPLE_API_URL"] = api_url
        env["EXAMPLE_SCOPE"] = f"openid profile email {API_SCOPE}"
    return env


@contextlib.contextmanager
def running_demo(workdir: Path, ports: Ports, database_url: str | None = None) -> Iterator[Demo]:
    """The whole example, stopped on the way out whatever happens."""
    demo = start(workdir, ports, database_url)
    try:
        yield demo
    finally:
        demo.stop()


def provision(argv: Sequence[str]) -> int:
    """``python -m examples.launch provision``: clients and demo user for docker-compose.yml.

    Reads the IdP's own ``IDP_*`` environment, and writes ``app-a.env``, ``app-b.env`` (the
    ``EXAMPLE_*`` settings of each app) and ``demo-user.txt`` into ``--out``. When
    ``app-a.env`` is already there it does nothing, so a restart creates no second clients.
    """
    parser = argparse.ArgumentParser(prog="examples.launch provision")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--app-a-url", required=True)
    parser.add_argument("--app-b-url", required=True)
    parser.add_argument("--api-url", required=True, help="also the API's audience")
    args = parser.parse_args(argv)
    if (args.out / "app-a.env").exists():
        print(f"examples: already provisioned ({args.out}/app-a.env exists)")
        return 0
    idp_env = {k: v for k, v in os.environ.items() if k.startswith("IDP_")}
    urls = {"a": args.app_a_url.rstrip("/"), "b": args.app_b_url.rstrip("/")}
    api = args.api_url.rstrip("/")
    clients = register(idp_env, args.out, urls, api)
    password = create_demo_user(idp_env, args.out)
    for key, client in clients.items():
        lines = app_env(client, urls[key], api if key == "a" else None)
        path = args.out / f"app-{key}.env"
        path.write_text("".join(f"{k}={v}\n" for k, v in lines.items()))
        path.chmod(0o600)
    (args.out / "demo-user.txt").write_text(f"username: {DEMO_USERNAME}\npassword: {password}\n")
    print(f"examples: demo user {DEMO_USERNAME!r}, password {password!r}")
    return 0


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    """``examples/run``: start everything, print the URLs and credentials, stop on Ctrl-C."""
    parser = argparse.ArgumentParser(prog="examples/run", description=__doc__)
    parser.add_argument(
        "--port", type=int, default=8000, help="IdP port; the apps use the next three"
    )
    parser.add_argument(
        "--database-url", help="IDP_DATABASE_URL (default: SQLite in a temporary directory)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args(argv)
    # Also SIGINT: a shell that starts this in the background has it ignored by default.
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _interrupt)
    ports = Ports(args.port, args.port + 1, args.port + 2, args.port + 3)
    workdir = Path(tempfile.mkdtemp(prefix="idp-examples-"))
    print(f"examples: working directory {workdir} (store, logs)", flush=True)
    try:
        demo = start(workdir, ports, args.database_url)
    except (RuntimeError, subprocess.CalledProcessError) as exc:
        print(f"examples: could not start: {exc} (logs in {workdir})", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    try:
        print(
            f"""
  IdP        {demo.idp_url}/.well-known/openid-configuration
  App A      {demo.app_a_url}/   (cookie app_a_session; calls the API)
  App B      {demo.app_b_url}/   (cookie app_b_session)
  Notes API  {demo.api_url}/notes  (bearer JWT, audience {demo.api_url})

  Sign in as  username: {demo.username}   password: {demo.password}

Ctrl-C stops everything.""",
            flush=True,
        )
        with contextlib.suppress(KeyboardInterrupt):
            while all(p.popen.poll() is None for p in demo.processes):
                time.sleep(0.5)
            dead = [p.name for p in demo.processes if p.popen.poll() is not None]
            print(
                f"examples: {', '.join(dead)} exited; stopping (logs in {workdir})", file=sys.stderr
            )
    finally:
        demo.stop()
        if not args.keep:
            import shutil

            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["provision"]:
        sys.exit(provision(sys.argv[2:]))
    sys.exit(main())
