"""The store goes away under a running ``idp serve`` and comes back.

PostgreSQL only: the service reaches it over TCP, so it can become unreachable while the
process keeps running. SQLite is an embedded file opened inside the service's own process;
it cannot become unreachable in the same way, so there is no outage to simulate for it.

A :class:`~tests.support.processes.TcpProxy` on 127.0.0.1 sits between the service and PostgreSQL;
cutting it closes every open connection and turns new ones away, restoring it relays again.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest

from tests.support.processes import ServeProcess, TcpProxy, idp_json, migrate, serving, wait_for
from tests.support.server import free_port, make_env, pg_base_url

pytestmark = [
    pytest.mark.slow,
    pytest.mark.parametrize("database_url", ["postgresql"], indirect=True),
]

# Answers during the outage must come at once, not after connection or command time-outs.
QUICK = 3.0
RECOVERY = 15.0
PUBLIC_DOCUMENTS = (
    "/jwks.json",
    "/.well-known/openid-configuration",
    "/.well-known/oauth-authorization-server",
)


def through_proxy(database_url: str, proxy_port: int) -> str:
    """The same DSN (user, database, ``search_path``) with the proxy as host and port."""
    parts = urlsplit(database_url)
    user, at, _ = parts.netloc.rpartition("@")
    return urlunsplit(parts._replace(netloc=f"{user}{at}127.0.0.1:{proxy_port}"))


def upstream() -> tuple[str, int]:
    parts = urlsplit(pg_base_url())
    return parts.hostname or "127.0.0.1", parts.port or 5432


def request_token(http: httpx.Client, client: dict[str, Any]) -> httpx.Response:
    return http.post(
        "/token",
        data={"grant_type": "client_credentials"},
        auth=(client["client_id"], client["client_secret"]),
    )


def timed(call: Any) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = call()
    return response, time.monotonic() - started


@dataclass
class Outage:
    """A ready ``idp serve`` whose only way to PostgreSQL is the proxy, and a client."""

    server: ServeProcess
    proxy: TcpProxy
    http: httpx.Client
    client: dict[str, Any]


@contextlib.contextmanager
def serving_through_proxy(database_url: str, cwd: Path) -> Iterator[Outage]:
    """Migrate and register a client directly, then serve with the store behind the proxy."""
    port = free_port()
    direct = make_env(database_url, port)
    migrate(direct, cwd)
    client = idp_json(["clients", "create", "--name", "outage"], direct, cwd)
    with TcpProxy(*upstream()) as proxy:
        env = {**direct, "IDP_DATABASE_URL": through_proxy(database_url, proxy.port)}
        with (
            serving(env, cwd, port) as server,
            httpx.Client(base_url=server.url, timeout=30) as http,
        ):
            assert proxy.relayed >= 1
            yield Outage(server, proxy, http, client)


def wait_until_recovered(outage: Outage) -> None:
    """After a restore, /token issues and /readyz is ready within RECOVERY seconds."""
    restored_at = time.monotonic()
    wait_for(
        lambda: request_token(outage.http, outage.client).status_code == 200,
        RECOVERY,
        interval=0.2,
        message="/token issuing again after the store came back",
    )
    wait_for(
        lambda: outage.http.get("/readyz").status_code == 200,
        RECOVERY - (time.monotonic() - restored_at),
        interval=0.2,
        message="/readyz ready again after the store came back",
    )


@pytest.mark.parametrize("refuse", [False, True], ids=["closed-on-accept", "refused"])
def test_outage_answers_from_memory_then_recovers(
    database_url: str, tmp_path: Path, refuse: bool
) -> None:
    """Cut: public documents 200, /token 503 fast (after at most a second), /readyz 503.
    Restore: tokens again."""
    with serving_through_proxy(database_url, tmp_path) as outage:
        http, client = outage.http, outage.client
        assert request_token(http, client).status_code == 200
        assert http.get("/readyz").status_code == 200
        documents = {path: http.get(path).content for path in PUBLIC_DOCUMENTS}

        outage.proxy.cut(refuse=refuse)
        # The clients the server holds serve for at most a second after it last read their
        # counter (see idp.store.client_cache); then /token needs the store again.
        wait_for(
            lambda: request_token(http, client).status_code == 503,
            QUICK,
            interval=0.05,
            message="/token refusing once held clients are no longer trusted",
        )
        for _ in range(3):
            response, elapsed = timed(lambda: request_token(http, client))
            assert response.status_code == 503, response.text
            assert elapsed < QUICK, f"/token took {elapsed:.1f} s during the outage"
            assert response.headers["retry-after"].isdigit()
            assert response.headers["cache-control"] == "no-store"
            assert response.headers["content-type"].startswith("application/json")
            assert response.json()["error"] == "temporarily_unavailable"
            assert "error_description" in response.json()

            ready, elapsed = timed(lambda: http.get("/readyz"))
            assert ready.status_code == 503
            assert elapsed < QUICK + 1, f"/readyz took {elapsed:.1f} s during the outage"
            assert ready.json()["store"] == "unavailable"
            assert "retry-after" in ready.headers
            assert http.get("/healthz").status_code == 200
            for path, body in documents.items():
                answer, elapsed = timed(lambda path=path: http.get(path))
                assert answer.status_code == 200, path
                assert answer.content == body, path
                assert elapsed < QUICK, path
            # Let the key-ring watcher poll the unreachable store meanwhile.
            time.sleep(0.7)
        assert outage.server.alive()

        outage.proxy.restore()
        wait_until_recovered(outage)
        token = request_token(http, client)
        assert token.status_code == 200
        assert token.json()["token_type"] == "Bearer"
        assert outage.server.alive()
        assert outage.proxy.relayed >= 2
    output = outage.server.output()
    assert client["client_secret"] not in output
    assert token.json()["access_token"] not in output


# One record of idp.logs: "2026-01-02 03:04:05,678 WARNING idp.keyring: ..."
LOG_RECORD = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} [A-Z]+ [\w.]+: \S")


def test_outage_keeps_stderr_one_line_per_record(database_url: str, tmp_path: Path) -> None:
    """During and after an outage, every stderr line is one log record, with no traceback."""
    with serving_through_proxy(database_url, tmp_path) as outage:
        outage.proxy.cut(refuse=True)
        assert request_token(outage.http, outage.client).status_code == 503
        wait_for(
            lambda: "key ring watcher: store unavailable" in outage.server.stderr(),
            3,
            message="the key-ring watcher notices the outage",
        )
        # asyncpg retries its connection floor after 1 s, then 2 s: let it try twice.
        time.sleep(1.5)
        outage.proxy.restore()
        wait_until_recovered(outage)
    stderr = outage.server.stderr()
    assert "store unavailable" in stderr
    assert "Traceback" not in stderr
    odd = [line for line in stderr.splitlines() if not LOG_RECORD.match(line)]
    assert not odd, f"stderr lines that are not log records: {odd[:5]}"
