"""The docker-compose topology, as processes: two ``idp serve`` replicas on one PostgreSQL schema
behind a round-robin reverse proxy, all serving one issuer URL.

There is no Docker engine here, so docker-compose.yml is only parsed and checked for its
shape; the same topology then runs as real processes: a token from one replica verifies
against the other's JWKS and introspects there, and a browser
(httpx with a cookie jar) keeps its single sign-on while consecutive requests land on
different replicas, the login form's sealed state and CSRF token included.
"""

from __future__ import annotations

import asyncio
import secrets
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
import yaml

from idp.config import load_settings, new_key_encryption_key
from idp.verify import TokenVerifier
from tests.support.processes import ServeProcess, idp_json, migrate, start_serve
from tests.support.server import free_port, pg_base_url, pg_execute, with_search_path
from tests.support.sso import PASSWORD, AuthorizeParams, add_user, hidden_inputs, query_of

ROOT = Path(__file__).resolve().parents[2]
API = "https://api.example.test"
WEB_CB = "http://127.0.0.1:8765/cb"
TWO_CB = "http://127.0.0.1:8766/cb"
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "upgrade", "host"}


@dataclass
class RoundRobinProxy:
    """An HTTP reverse proxy that sends each request to the next replica in turn.

    It adds ``X-Forwarded-For`` and ``X-Forwarded-Proto`` as a TLS-terminating proxy would,
    and remembers which replica answered each request (``log`` of (replica, method, path)).
    """

    upstreams: list[str]
    log: list[tuple[int, str, str]] = field(default_factory=list)
    _turn: int = 0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        replica = self._turn % len(self.upstreams)
        self._turn += 1
        self.log.append((replica, scope["method"], scope["path"]))
        headers = [
            (k.decode("latin-1"), v.decode("latin-1"))
            for k, v in scope["headers"]
            if k.decode("latin-1").lower() not in HOP_BY_HOP
        ]
        client_ip = scope["client"][0] if scope.get("client") else "127.0.0.1"
        headers += [("x-forwarded-for", client_ip), ("x-forwarded-proto", "http")]
        url = self.upstreams[replica] + scope["raw_path"].decode("latin-1")
        if scope.get("query_string"):
            url += "?" + scope["query_string"].decode("latin-1")
        async with httpx.AsyncClient(timeout=30) as http:
            answer = await http.request(scope["method"], url, headers=headers, content=body)
        out = [
            (k.encode("latin-1"), v.encode("latin-1"))
            for k, v in answer.headers.multi_items()
            if k.lower() not in HOP_BY_HOP | {"content-length", "content-encoding"}
        ]
        out.append((b"content-length", str(len(answer.content)).encode()))
        await send({"type": "http.response.start", "status": answer.status_code, "headers": out})
        await send({"type": "http.response.body", "body": answer.content})


@dataclass
class Topology:
    """Two replicas behind the proxy, one issuer, one PostgreSQL schema."""

    issuer: str
    replicas: list[ServeProcess]
    proxy: RoundRobinProxy
    env: dict[str, str]
    service: tuple[str, str]
    web: str
    two: str


@pytest.fixture(scope="module")
def topology(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Topology]:
    workdir = tmp_path_factory.mktemp("deployment")
    schema = f"idp_deploy_{secrets.token_hex(6)}"
    asyncio.run(pg_execute(f"CREATE SCHEMA {schema}"))
    ports = [free_port(), free_port()]
    proxy_port = free_port()
    issuer = f"http://127.0.0.1:{proxy_port}"
    env = {
        "IDP_ISSUER": issuer,
        "IDP_DATABASE_URL": with_search_path(pg_base_url(), schema),
        "IDP_KEY_ENCRYPTION_KEY": new_key_encryption_key(),
        "IDP_TRUSTED_PROXIES": "127.0.0.1",
    }
    proxy = RoundRobinProxy([f"http://127.0.0.1:{p}" for p in ports])
    server = uvicorn.Server(
        uvicorn.Config(
            proxy, host="127.0.0.1", port=proxy_port, log_level="warning", lifespan="off"
        )
    )
    thread = threading.Thread(target=server.run, name="proxy", daemon=True)
    replicas: list[ServeProcess] = []
    try:
        migrate(env, workdir)  # once per release, before the replicas start
        service = idp_json(
            [
                "clients",
                "create",
                "--name",
                "reports",
                "--scope",
                "reports:read",
                "--audience",
                API,
            ],
            env,
            workdir,
        )
        clients = [
            idp_json(
                ["clients", "create", "--name", name, "--public", "--redirect-uri", uri],
                env,
                workdir,
            )
            for name, uri in (("web", WEB_CB), ("two", TWO_CB))
        ]
        add_user(load_settings(env))
        for number, port in enumerate(ports, 1):
            replicas.append(start_serve(env, workdir, port, name=f"replica-{number}"))
        for replica in replicas:
            replica.wait_ready()
        thread.start()
        deadline = time.monotonic() + 20
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "the proxy did not start"
            time.sleep(0.02)
        yield Topology(
            issuer,
            replicas,
            proxy,
            env,
            (service["client_id"], service["client_secret"]),
            clients[0]["client_id"],
            clients[1]["client_id"],
        )
    finally:
        server.should_exit = True
        if thread.is_alive():
            thread.join(timeout=10)
        for replica in replicas:
            replica.stop()
        asyncio.run(pg_execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))


def test_compose_file_has_the_topology() -> None:
    """docker-compose.yml parses and wires what docs/deployment.md promises."""
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"postgres", "migrate", "idp-1", "idp-2", "proxy", "app-a", "app-b", "api"} <= set(
        services
    )
    assert services["migrate"]["command"] == ["idp", "migrate"]
    for name in ("idp-1", "idp-2"):
        replica = services[name]
        assert replica["env_file"] == "deploy/idp.env"
        assert replica["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        assert replica["command"][:2] == ["idp", "serve"]
        assert "ports" not in replica, "replicas are reached only through the proxy"
    proxy = services["proxy"]
    assert "./deploy/Caddyfile:/etc/caddy/Caddyfile:ro" in proxy["volumes"]
    caddyfile = (ROOT / "deploy" / "Caddyfile").read_text()
    assert "reverse_proxy idp-1:8000 idp-2:8000" in caddyfile
    env_example = (ROOT / "deploy" / "idp.env.example").read_text()
    settings = dict(
        line.split("=", 1) for line in env_example.splitlines() if line and line[0] != "#"
    )
    assert settings["IDP_KEY_ENCRYPTION_KEY"] == "", "no key is ever committed"
    assert settings["IDP_TRUSTED_PROXIES"] == proxy["networks"]["idp"]["ipv4_address"]
    assert settings["IDP_ISSUER"].startswith("https://")
    assert "deploy/idp.env" in (ROOT / ".gitignore").read_text().splitlines()


def site_block(caddyfile: str, address: str) -> list[str]:
    """The directive lines of one site block of a Caddyfile, comments left out."""
    lines = caddyfile.split(f"\n{address} {{\n", 1)[1].split("\n}\n", 1)[0].splitlines()
    return [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]


def test_proxy_does_not_expose_metrics_publicly() -> None:
    """The public site answers /metrics itself (404) before anything reaches a replica."""
    caddyfile = (ROOT / "deploy" / "Caddyfile").read_text()
    idp_site = site_block(caddyfile, "idp.localhost:8443")
    proxied = next(i for i, line in enumerate(idp_site) if line.startswith("reverse_proxy"))
    assert "respond /metrics* 404" in idp_site[:proxied]
    for address in ("app-a.localhost:8443", "app-b.localhost:8443", "api.localhost:8443"):
        assert "idp-" not in " ".join(site_block(caddyfile, address))
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    for service in compose["services"].values():
        assert not any("8000" in str(port) for port in service.get("ports", []))


def test_compose_allows_the_example_apps_private_backchannel_receivers() -> None:
    """The example apps sit on the compose network's private addresses (development only)."""
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert compose["x-idp"]["environment"]["IDP_ALLOW_PRIVATE_BACKCHANNEL"] == "1"
    env_example = (ROOT / "deploy" / "idp.env.example").read_text()
    assert "IDP_ALLOW_PRIVATE_BACKCHANNEL" not in env_example, "production settings stay strict"


@pytest.mark.skipif(shutil.which("docker") is None, reason="no docker CLI")
def test_docker_compose_config_accepts_the_file(tmp_path: Path) -> None:
    """``docker compose config`` validates the file when the compose plugin is installed."""
    probe = subprocess.run(
        ["docker", "compose", "version"], capture_output=True, text=True, check=False
    )
    if probe.returncode != 0:
        pytest.skip("the docker compose plugin is not installed here")
    env_file = ROOT / "deploy" / "idp.env"
    created = not env_file.exists()
    if created:
        shutil.copy(ROOT / "deploy" / "idp.env.example", env_file)
    try:
        done = subprocess.run(
            ["docker", "compose", "config", "--quiet"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
    finally:
        if created:
            env_file.unlink()
    assert done.returncode == 0, done.stderr


def test_replicas_publish_the_same_keys(topology: Topology) -> None:
    answers = [httpx.get(f"{r.url}/jwks.json", timeout=10) for r in topology.replicas]
    assert answers[0].content == answers[1].content
    assert answers[0].headers["etag"] == answers[1].headers["etag"]
    discovery = httpx.get(f"{topology.replicas[1].url}/.well-known/openid-configuration").json()
    assert discovery["issuer"] == topology.issuer


def test_token_of_one_replica_verifies_with_the_other_replicas_keys(topology: Topology) -> None:
    first, second = topology.replicas
    answer = httpx.post(
        f"{first.url}/token",
        auth=topology.service,
        data={"grant_type": "client_credentials"},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    token = answer.json()["access_token"]
    verifier = TokenVerifier(topology.issuer, audience=API, jwks_uri=f"{second.url}/jwks.json")
    verified = verifier.verify(token, scopes=["reports:read"])
    assert verified.client_id == topology.service[0]
    assert verified.issuer == topology.issuer


def test_token_of_one_replica_introspects_on_the_other(topology: Topology) -> None:
    first, second = topology.replicas
    token = httpx.post(
        f"{first.url}/token", auth=topology.service, data={"grant_type": "client_credentials"}
    ).json()["access_token"]
    answer = httpx.post(f"{second.url}/introspect", auth=topology.service, data={"token": token})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["active"] is True
    assert body["client_id"] == topology.service[0]


def test_single_sign_on_across_replicas(topology: Topology) -> None:
    proxy = topology.proxy
    browser = httpx.Client(base_url=topology.issuer, follow_redirects=False, timeout=30)
    with browser:
        first = AuthorizeParams(topology.web, WEB_CB)
        start = len(proxy.log)
        page = browser.get(first.url())
        assert page.status_code == 200 and 'name="password"' in page.text
        fields = hidden_inputs(page.text)
        done = browser.post(
            "/login",
            data={
                "request": fields["request"],
                "csrf": fields["csrf"],
                "username": "alice",
                "password": PASSWORD,
            },
        )
        assert done.status_code == 303, done.text
        form_replica, login_replica = proxy.log[start][0], proxy.log[start + 1][0]
        assert form_replica != login_replica, proxy.log[start:]
        answer = query_of(done.headers["location"])
        assert done.headers["location"].startswith(WEB_CB + "?")
        assert answer["iss"] == topology.issuer

        # The next requests reach the other replica each time: the session holds on both.
        seen = set()
        for _ in range(2):
            second = AuthorizeParams(topology.two, TWO_CB)
            start = len(proxy.log)
            again = browser.get(second.url())
            assert again.status_code == 303, again.text
            assert again.headers["location"].startswith(TWO_CB + "?code=")
            seen.add(proxy.log[start][0])
            tokens = browser.post(
                "/token",
                data={
                    "grant_type": "authorization_code",
                    "code": query_of(again.headers["location"])["code"],
                    "redirect_uri": TWO_CB,
                    "client_id": topology.two,
                    "code_verifier": second.verifier,
                },
            )
            assert tokens.status_code == 200, tokens.text
            seen.add(proxy.log[start + 1][0])
        assert seen == {0, 1}
