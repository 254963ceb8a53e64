"""Starting ``idp serve`` as an operator does: the issuer it advertises, a busy port, the
banner's next steps, and JSON logs. Real processes on one SQLite file each (the store plays
no part in what is tested here)."""

from __future__ import annotations

import json
import re
import socket
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.processes import (
    CLI_TIMEOUT,
    START_TIMEOUT,
    ServeProcess,
    child_env,
    client_basic,
    create_client,
    idp_json,
    migrate,
    serving,
    start_serve,
    wait_for,
)
from tests.support.server import free_port, make_env
from tests.support.sso import query_of, submit_login

pytestmark = pytest.mark.slow


def sqlite_env(cwd: Path, port: int, **extra: str) -> dict[str, str]:
    return make_env(f"sqlite:///{cwd}/idp.db", port, **extra)


def warnings_in(banner: str) -> list[str]:
    return [line for line in banner.splitlines() if line.startswith("idp: warning:")]


# -- the issuer follows the address served --------------------------------------------------


def test_without_idp_issuer_discovery_follows_the_port_served(tmp_path: Path) -> None:
    """Every URL discovery advertises names the port actually served, not 8000."""
    port = free_port()
    env = sqlite_env(tmp_path, port)
    del env["IDP_ISSUER"]
    url = f"http://127.0.0.1:{port}"
    with serving(env, tmp_path, port) as server:
        discovery = httpx.get(f"{url}/.well-known/openid-configuration", timeout=10).json()
        banner = server.stdout()
    assert discovery["issuer"] == url
    endpoints = [v for k, v in discovery.items() if k.endswith(("_endpoint", "_uri"))]
    assert endpoints and all(e.startswith(f"{url}/") for e in endpoints), endpoints
    assert f"idp: open {url}/.well-known/openid-configuration" in banner.splitlines()
    assert not [w for w in warnings_in(banner) if "does not match" in w]


def test_an_issuer_on_another_loopback_port_is_one_warning(tmp_path: Path) -> None:
    """IDP_ISSUER is obeyed, and the start-up says once that it does not reach this server."""
    port = free_port()
    issuer = f"http://localhost:{port + 1 if port < 65535 else port - 1}"
    env = sqlite_env(tmp_path, port, IDP_ISSUER=issuer)
    with serving(env, tmp_path, port) as server:
        discovery = httpx.get(
            f"http://127.0.0.1:{port}/.well-known/openid-configuration", timeout=10
        ).json()
        banner = server.stdout()
    assert discovery["issuer"] == issuer
    mismatches = [w for w in warnings_in(banner) if "does not match" in w]
    assert mismatches == [
        f"idp: warning: IDP_ISSUER {issuer} does not match the address served "
        f"(127.0.0.1:{port}): discovery and tokens name URLs that do not reach this server"
    ]


def test_a_matching_issuer_gives_no_warning(tmp_path: Path) -> None:
    port = free_port()
    env = sqlite_env(tmp_path, port, IDP_ISSUER=f"http://localhost:{port}")
    with serving(env, tmp_path, port) as server:
        banner = server.stdout()
    assert not [w for w in warnings_in(banner) if "does not match" in w]


# -- a port already taken -------------------------------------------------------------------


def refused_start(server: ServeProcess) -> str:
    """The server exited 1 with exactly one line on stderr, and that line."""
    try:
        server.process.wait(START_TIMEOUT)
    finally:
        server.stop()
    assert server.process.returncode == 1, server.output()
    assert "Traceback" not in server.output()
    lines = server.stderr().strip().splitlines()
    assert len(lines) == 1, server.stderr()
    return lines[0]


def test_a_port_another_program_listens_on_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        line = refused_start(start_serve(sqlite_env(tmp_path, port), tmp_path, port))
    assert line == (
        f"idp: error: cannot listen on 127.0.0.1:{port}: the port is in use (another idp "
        "serve or another program); stop it or choose another --port"
    )


def test_a_port_in_use_is_one_json_line_with_json_logs(tmp_path: Path) -> None:
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        env = sqlite_env(tmp_path, port, IDP_LOG_FORMAT="json")
        line = refused_start(start_serve(env, tmp_path, port))
    record = json.loads(line)
    assert (record["level"], record["event"]) == ("error", "error")
    assert record["message"].startswith(f"cannot listen on 127.0.0.1:{port}: the port is in use")


def test_a_second_idp_serve_on_the_same_port_is_refused(tmp_path: Path) -> None:
    """granian binds with SO_REUSEPORT; the second server must not start beside the first."""
    port = free_port()
    env = sqlite_env(tmp_path, port)
    with serving(env, tmp_path, port) as first:
        second = start_serve(env, tmp_path, port, name="second")
        line = refused_start(second)
        assert "the port is in use" in line
        assert first.alive()
        assert httpx.get(f"{first.url}/readyz", timeout=10).status_code == 200


# -- next steps at the end of the banner ----------------------------------------------------


def next_step_commands(banner: str) -> list[str]:
    """The commands (not the comments) the banner lists after ``idp: next steps``."""
    lines = banner.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("idp: next steps"))
    steps = []
    for line in lines[start + 1 :]:
        if not line.startswith("  "):
            break
        if not line.strip().startswith("#"):
            steps.append(line.strip())
    return steps


def bash(
    script: str, env: dict[str, str], cwd: Path, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        env=child_env(env),
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT,
        check=False,
    )


def test_the_banners_next_steps_work_when_pasted(tmp_path: Path) -> None:
    """Paste the commands: two clients and a user exist, the URL signs alice in, and the
    curl line redeems the code with the PKCE verifier for tokens."""
    port = free_port()
    env = sqlite_env(tmp_path, port)
    password = "a quick start password"
    with serving(env, tmp_path, port, "--next-steps") as server:
        commands = next_step_commands(server.stdout())
        assert len(commands) == 5, commands
        *setup, redeem_line = commands
        assert redeem_line.startswith("curl ")
        done = bash("\n".join(setup), env, tmp_path, stdin=password + "\n")
        assert done.returncode == 0, done.stderr
        secret = re.search(r"^client_secret: (\S+)$", done.stderr, re.MULTILINE)
        client_id = re.search(r"^client_id: (\S+)$", done.stderr, re.MULTILINE)
        assert secret and client_id, done.stderr
        url = done.stdout.strip().splitlines()[-1]
        assert url.startswith(f"{server.url}/authorize?")
        assert f"client_id={client_id[1]}&" in url

        names = {c["name"] for c in idp_json(["clients", "list"], env, tmp_path)}
        assert names == {"my-service", "my-web-app"}
        assert [u["username"] for u in idp_json(["users", "list"], env, tmp_path)] == ["alice"]

        with httpx.Client(base_url=server.url, timeout=30) as browser:
            page = browser.get(url)
            assert page.status_code == 200, page.text
            answer = submit_login(browser, page, "alice", password)
        assert answer.status_code == 303, answer.text
        code = query_of(answer.headers["location"])["code"]
        redeem = redeem_line.replace("CODE", code).replace("CLIENT_SECRET", secret[1])
        tokens = bash(f"CLIENT_ID={client_id[1]}\n{redeem}", env, tmp_path)
    assert tokens.returncode == 0, tokens.stderr
    body = json.loads(tokens.stdout)
    assert body["token_type"] == "Bearer", body
    assert body["id_token"] and body["access_token"] and body["refresh_token"]


# -- JSON logs ------------------------------------------------------------------------------


def test_json_logs_one_object_per_line_with_an_access_record_and_no_secrets(
    tmp_path: Path,
) -> None:
    """Every line the server writes parses as JSON; a token request is logged with its
    client id; no secret, token, query value or Authorization header is in the log."""
    port = free_port()
    env = sqlite_env(tmp_path, port, IDP_LOG_FORMAT="json")
    migrate(env, tmp_path)
    client = create_client(env, tmp_path, "logged", "ES256")
    with serving(env, tmp_path, port) as server, httpx.Client(base_url=server.url) as http:
        assert http.get("/jwks.json", params={"code": "query-value-never-logged"}).is_success
        answer = http.post(
            "/token", data={"grant_type": "client_credentials"}, headers=client_basic(client)
        )
        assert answer.status_code == 200, answer.text
        token = answer.json()["access_token"]
        refused = http.post(
            "/token",
            data={
                "grant_type": "client_credentials",
                "client_id": client["client_id"],
                "client_secret": "wrong-secret-never-logged",
            },
        )
        assert refused.status_code == 401
        assert (
            http.get("/userinfo", headers={"Authorization": f"Bearer {token}"}).status_code == 403
        )
        request_id = answer.headers["x-request-id"]

        def token_logged() -> dict[str, Any] | None:
            records = [json.loads(line) for line in server.stderr().splitlines() if line]
            return next((r for r in records if r.get("request_id") == request_id), None)

        record = wait_for(token_logged, 10, message="the token request is logged")
    output = server.output()
    records = [json.loads(line) for line in output.splitlines() if line.strip()]
    assert all({"time", "level", "event"} <= set(r) for r in records)
    events = {r["event"] for r in records}
    assert {"startup", "request"} <= events
    assert next(r["message"] for r in records if r["event"] == "startup").startswith("store: ")
    assert record["event"] == "request" and record["level"] == "info"
    assert (record["method"], record["path"], record["status"]) == ("POST", "/token", 200)
    assert record["client_id"] == client["client_id"]
    assert isinstance(record["duration_ms"], float) and record["time"].endswith("Z")
    requests = [r for r in records if r["event"] == "request"]
    assert any(r["path"] == "/userinfo" and r["subject"] == client["client_id"] for r in requests)
    for secret in (
        client["client_secret"],
        token,
        token.split(".")[2],
        "query-value-never-logged",
        "wrong-secret-never-logged",
        client_basic(client)["Authorization"].split()[1],
        "Basic ",
        "Bearer ",
    ):
        assert secret not in output


# -- scripts/serve --------------------------------------------------------------------------

REPOSITORY = Path(__file__).resolve().parents[2]


def test_scripts_serve_port_is_the_issuer_and_ends_with_next_steps(tmp_path: Path) -> None:
    """``scripts/serve --port P`` advertises port P and prints the next steps. Skipped where
    the script would first install into .venv (scripts/test leaves it installed)."""
    marker = REPOSITORY / ".venv" / ".idp-installed"
    pyproject = REPOSITORY / "pyproject.toml"
    if not marker.exists() or marker.stat().st_mtime < pyproject.stat().st_mtime:
        pytest.skip("scripts/serve would install into .venv first")
    port = free_port()
    env = {"IDP_DATABASE_URL": f"sqlite:///{tmp_path}/idp.db"}
    out, err = tmp_path / "script.stdout.log", tmp_path / "script.stderr.log"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        process = subprocess.Popen(
            [str(REPOSITORY / "scripts" / "serve"), "--port", str(port)],
            env=child_env(env),
            cwd=tmp_path,
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
            start_new_session=True,
        )
    server = ServeProcess(process, f"http://127.0.0.1:{port}", out, err)
    try:
        server.wait_ready()
        discovery = httpx.get(f"{server.url}/.well-known/openid-configuration", timeout=10)
        banner = server.stdout()
    finally:
        server.stop()
    assert discovery.json()["issuer"] == server.url
    assert f"idp: open {server.url}/.well-known/openid-configuration" in banner
    assert any(c.startswith(f'echo "{server.url}/authorize?') for c in next_step_commands(banner))
