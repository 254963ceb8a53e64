"""Real ``idp serve`` processes (granian) on both stores, driven over HTTP and by the CLI.

Each test starts the server as a child process in a temporary directory, waits for
``/readyz``, and stops it by its process id however the test ends.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import stat
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from http.client import HTTPConnection
from pathlib import Path
from typing import Any

import httpx
import jwt as pyjwt
import pytest
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from tests.support.processes import (
    AUDIENCE,
    SCOPE,
    ServeProcess,
    client_basic,
    connections_by_pid,
    create_client,
    header_of,
    idp_json,
    migrate,
    run_idp,
    serving,
    wait_for,
)
from tests.support.server import free_port, make_env

pytestmark = pytest.mark.slow

PRIVATE_MEMBERS = ("d", "p", "q", "dp", "dq", "qi", "k", "oth")
KEY_CHANGE_WAIT = 5.0
MAX_HEAD_BYTES = 16 * 1024  # idp/http/server.py
MAX_BODY_BYTES = 64 * 1024  # idp/http/middleware.py
HEADER_READ_TIMEOUT = 10.0  # idp/http/server.py, HEADER_READ_TIMEOUT_MS
DISCONNECT_DEADLINE = HEADER_READ_TIMEOUT + 2.5


# -- helpers --------------------------------------------------------------------------------


def server_env(
    database_url: str, port: int, cwd: Path, *, sqlite_too: bool = True
) -> dict[str, str]:
    """The environment for a server on ``port``, with ``idp migrate`` run first.

    PostgreSQL must be migrated before ``idp serve``; SQLite migrates itself at start, but
    the CLI needs the schema to create clients before the server first runs.
    """
    env = make_env(database_url, port)
    if sqlite_too or not database_url.startswith("sqlite:"):
        migrate(env, cwd)
    return env


def revoke(env: dict[str, str], cwd: Path, kid: str) -> None:
    """``idp keys revoke``; kids are base64url and may start with "-", hence the "--"."""
    done = run_idp(["keys", "revoke", "--json", "--", kid], env, cwd)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["state"] == "revoked"


def get_token(http: httpx.Client, client: dict[str, Any]) -> str:
    response = http.post(
        "/token", data={"grant_type": "client_credentials"}, headers=client_basic(client)
    )
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    token: str = response.json()["access_token"]
    return token


def fetch_jwks(http: httpx.Client) -> tuple[dict[str, Any], str]:
    """The served JWK Set and its ETag; no key in it may carry a private member."""
    response = http.get("/jwks.json")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/jwk-set+json")
    jwks: dict[str, Any] = response.json()
    for key in jwks["keys"]:
        leaked = [m for m in PRIVATE_MEMBERS if m in key]
        assert not leaked, f"private members {leaked} published for {key['kid']}"
    return jwks, response.headers["etag"]


def wait_for_jwks(
    http: httpx.Client, condition: Callable[[dict[str, Any], str], bool], message: str
) -> tuple[dict[str, Any], str]:
    """Poll /jwks.json until ``condition(jwks, etag)`` holds; at most KEY_CHANGE_WAIT s."""

    def check() -> tuple[dict[str, Any], str] | None:
        jwks, etag = fetch_jwks(http)
        return (jwks, etag) if condition(jwks, etag) else None

    found: tuple[dict[str, Any], str] = wait_for(check, KEY_CHANGE_WAIT, message=message)
    return found


def kids(jwks: dict[str, Any]) -> set[str]:
    return {key["kid"] for key in jwks["keys"]}


def verify(url: str, jwks: dict[str, Any], token: str, client: dict[str, Any]) -> dict[str, Any]:
    """Check the token with two libraries: PyJWT fetching the JWKS over HTTP, and joserfc."""
    alg = client["access_token_alg"]
    header = header_of(token)
    assert header["typ"] == "at+jwt"
    assert header["alg"] == alg
    assert header["kid"] in kids(jwks)

    signing_key = pyjwt.PyJWKClient(f"{url}/jwks.json", cache_keys=False).get_signing_key_from_jwt(
        token
    )
    claims: dict[str, Any] = pyjwt.decode(
        token,
        signing_key.key,
        algorithms=[alg],
        audience=AUDIENCE,
        issuer=url,
        options={"require": ["iss", "sub", "aud", "exp", "iat", "jti"]},
    )
    decoded = jwt.decode(token, KeySet.import_key_set(jwks), algorithms=[alg])
    assert decoded.header["kid"] == header["kid"]
    assert decoded.claims == claims

    assert claims["iss"] == url
    assert claims["sub"] == client["client_id"]
    assert claims["client_id"] == client["client_id"]
    assert claims["aud"] == AUDIENCE
    assert claims["scope"] == SCOPE
    assert claims["exp"] == claims["iat"] + 600
    assert abs(claims["iat"] - time.time()) < 60
    assert isinstance(claims["jti"], str) and len(claims["jti"]) >= 16
    return claims


def does_not_verify(url: str, jwks: dict[str, Any], token: str) -> bool:
    """Neither library accepts the token against the served keys."""
    alg = header_of(token)["alg"]
    try:
        jwt.decode(token, KeySet.import_key_set(jwks), algorithms=[alg])
    except (JoseError, ValueError):
        pass
    else:
        return False
    try:
        pyjwt.PyJWKClient(f"{url}/jwks.json", cache_keys=False).get_signing_key_from_jwt(token)
    except pyjwt.PyJWKClientError:
        return True
    return False


def one_line_error(done: Any, code: int) -> str:
    """The command failed with ``code`` and exactly one line on stderr, no traceback."""
    assert done.returncode == code, (done.returncode, done.stdout, done.stderr)
    assert "Traceback" not in done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    line: str = lines[0]
    return line


# -- start-up banner and restart ------------------------------------------------------------


def test_banner_names_store_keys_and_discovery_and_restart_keeps_keys(
    database_url: str, tmp_path: Path
) -> None:
    """The first lines say where things are; a second start reuses the store and the keys."""
    port = free_port()
    env = server_env(database_url, port, tmp_path, sqlite_too=False)
    sqlite = database_url.startswith("sqlite:")
    if sqlite:
        # The embedded store keeps its key-encryption key in a file it makes beside itself.
        del env["IDP_KEY_ENCRYPTION_KEY"]
    url = f"http://127.0.0.1:{port}"
    kek_file = tmp_path / "idp.db.kek"

    with serving(env, tmp_path, port) as server, httpx.Client(base_url=url, timeout=10) as http:
        lines = server.stdout().splitlines()
        if sqlite:
            assert lines[0] == f"idp: store: SQLite file {tmp_path / 'idp.db'}"
            assert lines[1].endswith(f"key-encryption key from {kek_file}")
        else:
            assert lines[0].startswith("idp: store: PostgreSQL postgresql://")
            assert lines[0].endswith(database_url.split("@", 1)[1])
            assert lines[1].endswith("key-encryption key from IDP_KEY_ENCRYPTION_KEY")
        assert lines[1].startswith("idp: keys: 4 published signing keys")
        assert lines[2] == f"idp: open {url}/.well-known/openid-configuration"
        discovery = http.get("/.well-known/openid-configuration").json()
        assert discovery["issuer"] == url
        assert discovery["jwks_uri"] == f"{url}/jwks.json"
        first_jwks, first_etag = fetch_jwks(http)
        assert len(first_jwks["keys"]) == 4
    if sqlite:
        assert stat.S_IMODE(kek_file.stat().st_mode) == 0o600
        kek = kek_file.read_bytes()

    with (
        serving(env, tmp_path, port, name="second") as server,
        httpx.Client(base_url=url, timeout=10) as http,
    ):
        assert server.stdout().splitlines()[1].startswith("idp: keys: 4 published signing keys")
        second_jwks, second_etag = fetch_jwks(http)
    assert kids(second_jwks) == kids(first_jwks)
    assert second_etag == first_etag
    if sqlite:
        assert kek_file.read_bytes() == kek


# -- tokens, rotation and revocation while serving ------------------------------------------


def test_tokens_verify_and_follow_rotation_and_revocation(
    database_url: str, tmp_path: Path
) -> None:
    """Tokens verify over real HTTP; CLI key changes reach the running server within 5 s."""
    port = free_port()
    env = server_env(database_url, port, tmp_path)
    rs = create_client(env, tmp_path, "rs-service", "RS256")
    es = create_client(env, tmp_path, "es-service", "ES256")
    tokens: list[str] = []

    with (
        serving(env, tmp_path, port) as server,
        httpx.Client(base_url=server.url, timeout=10) as http,
    ):
        url = server.url
        jwks, etag = fetch_jwks(http)
        first = {c["access_token_alg"]: get_token(http, c) for c in (rs, es)}
        tokens.extend(first.values())
        verify(url, jwks, first["RS256"], rs)
        verify(url, jwks, first["ES256"], es)
        old_rs_kid = header_of(first["RS256"])["kid"]

        # Rotation: the old active key retires (still published), the next one signs.
        rotated = idp_json(["keys", "rotate"], env, tmp_path)
        by_alg = {r["alg"]: r for r in rotated}
        assert by_alg["RS256"]["retired_kid"] == old_rs_kid
        jwks, etag = wait_for_jwks(
            http,
            lambda _, new_etag: new_etag != etag,
            "/jwks.json changes after `idp keys rotate`",
        )
        assert {by_alg[a]["active_kid"] for a in by_alg} <= kids(jwks)
        assert old_rs_kid in kids(jwks)
        states = {k["kid"]: k["state"] for k in idp_json(["keys", "list"], env, tmp_path)}
        assert states[old_rs_kid] == "retired"
        after = {c["access_token_alg"]: get_token(http, c) for c in (rs, es)}
        tokens.extend(after.values())
        for alg, client in (("RS256", rs), ("ES256", es)):
            assert header_of(after[alg])["kid"] == by_alg[alg]["active_kid"]
            verify(url, jwks, after[alg], client)
            verify(url, jwks, first[alg], client)

        # Revoking the retired key removes it from the JWKS: its tokens stop verifying.
        revoke(env, tmp_path, old_rs_kid)
        jwks, etag = wait_for_jwks(
            http,
            lambda found, _: old_rs_kid not in kids(found),
            f"retired kid {old_rs_kid} leaves /jwks.json after revocation",
        )
        assert does_not_verify(url, jwks, first["RS256"])
        verify(url, jwks, after["RS256"], rs)

        # Revoking the active key: gone at once, and another key signs from then on.
        active_es_kid = by_alg["ES256"]["active_kid"]
        revoke(env, tmp_path, active_es_kid)
        jwks, _ = wait_for_jwks(
            http,
            lambda found, _: active_es_kid not in kids(found),
            f"active kid {active_es_kid} leaves /jwks.json after revocation",
        )
        replacement = get_token(http, es)
        tokens.append(replacement)
        assert header_of(replacement)["kid"] != active_es_kid
        assert header_of(replacement)["kid"] == by_alg["ES256"]["next_kid"]
        verify(url, jwks, replacement, es)
        assert does_not_verify(url, jwks, after["ES256"])
    assert server.process.returncode == 0, "idp serve did not stop cleanly on SIGINT"
    output = server.output()
    for secret in (rs["client_secret"], es["client_secret"]):
        assert secret not in output
    for token in tokens:
        assert token not in output
        assert token.split(".")[2] not in output
    assert "PRIVATE KEY" not in output
    assert "Traceback" not in output


@pytest.mark.parametrize(
    "command",
    [
        ["keys", "revoke"],
        ["clients", "show"],
        ["clients", "delete"],
        ["clients", "update", "{id}", "--name", "x"],
        ["users", "update", "{id}", "--name", "x"],
        ["users", "disable", "{id}", "--json"],
    ],
    ids=lambda command: " ".join(command[:2]),
)
def test_cli_takes_identifiers_that_start_with_a_dash(tmp_path: Path, command: list[str]) -> None:
    """An operator pasting such a kid or client id gets the real answer, not a usage error."""
    env = make_env(f"sqlite:///{tmp_path}/idp.db", free_port())
    migrate(env, tmp_path)
    identifier = "-2FclscdUDcW8ptVpTqaGX0Mwv0f3pPepJtIq7xZmW8"
    if "{id}" in command:
        args = [identifier if a == "{id}" else a for a in command]
    else:
        args = [*command, identifier]
    done = run_idp(args, env, tmp_path)
    line = one_line_error(done, 1)
    assert "-2FclscdUDcW8ptVpTqaGX0Mwv0f3pPepJtIq7xZmW8" in line


# -- HTTP hardening (no storage involved: one SQLite server for all) ------------------------


class ClosureWatch:
    """A client connection that sends ``data`` (maybe nothing) and notes when it is closed."""

    def __init__(self, port: int, data: bytes = b"") -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.sock.settimeout(None)
        if data:
            self.sock.sendall(data)
        self.started = time.monotonic()
        self.closed = threading.Event()
        self.closed_after: float | None = None
        self.received = b""
        self._thread = threading.Thread(target=self._wait, daemon=True)
        self._thread.start()

    def _wait(self) -> None:
        with contextlib.suppress(OSError):
            while chunk := self.sock.recv(65536):
                self.received += chunk
        self.closed_after = time.monotonic() - self.started
        self.closed.set()

    def wait_closed(self, deadline: float) -> float | None:
        """Seconds until the server closed it, or None if still open ``deadline`` s after."""
        self.closed.wait(max(0.0, self.started + deadline - time.monotonic()))
        return self.closed_after

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self._thread.join(timeout=5)


@dataclass
class Hardened:
    """The shared server, and a connection opened at its start that never sends a byte."""

    server: ServeProcess
    silent: ClosureWatch

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def port(self) -> int:
        return int(self.server.url.rsplit(":", 1)[1])


@pytest.fixture(scope="module")
def hardened(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hardened]:
    """One ``idp serve`` over a throw-away SQLite file, shared by the hardening tests.

    The silent connection is opened here so that its header time-out runs while the other
    tests do, instead of adding its own wait to the suite.
    """
    cwd = tmp_path_factory.mktemp("hardening")
    port = free_port()
    env = make_env(f"sqlite:///{cwd}/idp.db", port)
    with serving(env, cwd, port) as server:
        silent = ClosureWatch(port)
        try:
            yield Hardened(server, silent)
        finally:
            silent.close()


def raw_exchange(port: int, data: bytes, timeout: float = 10.0) -> bytes:
    """Send raw bytes on a fresh connection and read until the server closes it."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def assert_json_error(response: httpx.Response, status: int, error: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["error"] == error
    assert response.json()["error_description"]
    assert "Traceback" not in response.text


def test_request_head_over_16_kib_gets_431(hardened: Hardened) -> None:
    with httpx.Client(base_url=hardened.url, timeout=10) as http:
        response = http.get("/healthz", headers={"X-Padding": "a" * (2 * MAX_HEAD_BYTES)})
        assert response.status_code == 431
        many = {f"X-Padding-{i}": "b" * 1000 for i in range(20)}
        assert http.get("/healthz", headers=many).status_code == 431
        # Heads well under the limit are fine, and the server is still there.
        assert http.get("/healthz", headers={"X-Padding": "a" * 4096}).status_code == 200
    status_line = raw_exchange(
        hardened.port,
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Padding: " + b"a" * (2 * MAX_HEAD_BYTES),
    ).split(b"\r\n", 1)[0]
    assert status_line.startswith(b"HTTP/1.1 431")


def test_stalled_request_head_is_cut_off_while_others_are_served(hardened: Hardened) -> None:
    """A slow client holding a half-sent head is disconnected after the header timeout."""
    stalled = ClosureWatch(
        hardened.port, b"POST /token HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: appl"
    )
    try:
        with httpx.Client(base_url=hardened.url, timeout=5) as http:
            # Meanwhile other connections are answered at once.
            for _ in range(5):
                asked = time.monotonic()
                assert http.get("/healthz").status_code == 200
                assert http.get("/jwks.json").status_code == 200
                assert time.monotonic() - asked < 1.0
                time.sleep(0.2)
            assert not stalled.closed.is_set()
        closed_after = stalled.wait_closed(DISCONNECT_DEADLINE)
    finally:
        stalled.close()
    assert closed_after is not None, f"still open after {DISCONNECT_DEADLINE} s"
    assert HEADER_READ_TIMEOUT - 1 <= closed_after <= DISCONNECT_DEADLINE


def test_silent_connection_is_cut_off_after_the_header_timeout(hardened: Hardened) -> None:
    """A client that connects and sends nothing must not hold a connection for ever."""
    closed_after = hardened.silent.wait_closed(DISCONNECT_DEADLINE)
    assert closed_after is not None, f"a silent connection still open after {DISCONNECT_DEADLINE} s"
    assert closed_after <= DISCONNECT_DEADLINE


def test_token_body_over_64_kib_gets_413_json(hardened: Hardened) -> None:
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    body = b"grant_type=client_credentials&x=" + b"a" * MAX_BODY_BYTES
    with httpx.Client(base_url=hardened.url, timeout=10) as http:
        declared = http.post("/token", content=body, headers=form)
        assert_json_error(declared, 413, "invalid_request")

        def chunks() -> Iterator[bytes]:
            for start in range(0, len(body), 8192):
                yield body[start : start + 8192]

        streamed = http.post("/token", content=chunks(), headers=form)
        assert "content-length" not in streamed.request.headers
        assert_json_error(streamed, 413, "invalid_request")
        assert http.get("/healthz").status_code == 200


def test_wrong_method_and_unknown_path_get_json(hardened: Hardened) -> None:
    with httpx.Client(base_url=hardened.url, timeout=10) as http:
        not_allowed = http.get("/token")
        assert_json_error(not_allowed, 405, "method_not_allowed")
        assert "POST" in not_allowed.headers["allow"]
        assert_json_error(http.get("/no/such/endpoint"), 404, "not_found")
        assert_json_error(http.post("/jwks.json"), 405, "method_not_allowed")


def test_served_endpoints_keep_their_refusals_headers_and_bodies(hardened: Hardened) -> None:
    """What ``idp serve`` answers natively (token, JWKS, discovery) and through the app
    (every other path) carries a request id and keeps each refusal."""
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    with httpx.Client(base_url=hardened.url, timeout=10) as http:
        twice = http.post(
            "/token",
            content=b"grant_type=client_credentials",
            headers=[
                ("Content-Type", "application/x-www-form-urlencoded"),
                ("Authorization", "Basic YTpi"),
                ("Authorization", "Basic Yzpk"),
            ],
        )
        assert_json_error(twice, 400, "invalid_request")
        assert "Authorization" in twice.json()["error_description"]
        assert_json_error(http.post("/token", content=b"x=1", headers={}), 400, "invalid_request")
        unknown = http.post("/token", content=b"grant_type=client_credentials", headers=form)
        assert_json_error(unknown, 401, "invalid_client")
        assert unknown.headers["www-authenticate"].startswith("Basic")

        first = http.get("/jwks.json")
        assert first.status_code == 200
        assert first.headers["content-type"] == "application/jwk-set+json"
        assert int(first.headers["content-length"]) == len(first.content)
        again = http.get("/jwks.json", headers={"If-None-Match": first.headers["etag"]})
        assert again.status_code == 304
        assert again.content == b""
        assert again.headers["etag"] == first.headers["etag"]

        # Through the app: a query string, a form body and a percent-encoded path.
        authorize = http.get("/authorize", params={"client_id": "no such client", "x": "a&b"})
        assert authorize.status_code == 400
        assert "client_id is not a registered client" in authorize.text
        introspected = http.post("/introspect", content=b"token=abc", headers=form)
        assert_json_error(introspected, 401, "invalid_client")
        assert_json_error(http.get("/no%20such/path"), 404, "not_found")

        answers = [first, again, twice, authorize, introspected, http.get("/healthz")]
        ids = [answer.headers["x-request-id"] for answer in answers]
        assert all(re.fullmatch(r"[0-9a-f]{16}", request_id) for request_id in ids)
        assert len(set(ids)) == len(ids)


# -- behind a TLS-terminating proxy: an https issuer -----------------------------------------

BODY_READ_TIMEOUT = 2.0  # IDP_BODY_READ_TIMEOUT below, short for the test
HSTS = "max-age=31536000"


@pytest.fixture(scope="module")
def https_issuer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    """``idp serve`` with an https issuer, as behind the TLS proxy in deploy/, on SQLite."""
    cwd = tmp_path_factory.mktemp("https-issuer")
    port = free_port()
    env = make_env(
        f"sqlite:///{cwd}/idp.db",
        port,
        IDP_ISSUER=f"https://127.0.0.1:{port}",
        IDP_BODY_READ_TIMEOUT=f"{BODY_READ_TIMEOUT:.0f}s",
    )
    with serving(env, cwd, port) as server:
        yield server


def test_every_answer_carries_hsts_when_the_issuer_is_https(https_issuer: ServeProcess) -> None:
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    with httpx.Client(base_url=https_issuer.url, timeout=10) as http:
        answers = [
            http.get("/healthz"),
            http.get("/jwks.json"),
            http.get("/.well-known/openid-configuration"),
            http.get("/no/such/endpoint"),
            http.get("/token"),
            http.post("/token", content=b"grant_type=client_credentials", headers=form),
            http.post("/token", content=b"x" * (MAX_BODY_BYTES + 1), headers=form),
            http.get("/authorize"),
            http.get("/admin/clients"),
        ]
    assert [a.status_code for a in answers] == [200, 200, 200, 404, 405, 401, 413, 400, 401]
    for answer in answers:
        assert answer.headers.get("strict-transport-security") == HSTS, answer.request.url


def test_no_hsts_for_an_http_issuer(hardened: Hardened) -> None:
    with httpx.Client(base_url=hardened.url, timeout=10) as http:
        assert "strict-transport-security" not in http.get("/healthz").headers
        assert "strict-transport-security" not in http.get("/nowhere").headers


def test_stalled_request_body_is_answered_408_and_closed(https_issuer: ServeProcess) -> None:
    """A client that sends its head and part of the body, then nothing, is cut off."""
    port = int(https_issuer.url.rsplit(":", 1)[1])
    stalled = ClosureWatch(
        port,
        b"POST /token HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 200\r\n\r\n"
        b"grant_type=client_cre",
    )
    try:
        # Meanwhile the server answers others.
        with httpx.Client(base_url=https_issuer.url, timeout=5) as http:
            assert http.get("/healthz").status_code == 200
        closed_after = stalled.wait_closed(BODY_READ_TIMEOUT + 15)
    finally:
        stalled.close()
    assert closed_after is not None, "a stalled body still holds its connection"
    assert closed_after >= BODY_READ_TIMEOUT - 0.5
    head, _, body = stalled.received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408"), stalled.received
    assert b"strict-transport-security: max-age=31536000" in head.lower()
    assert json.loads(body)["error"] == "invalid_request"
    assert https_issuer.alive()


def test_trickled_request_body_is_cut_off_at_the_deadline(https_issuer: ServeProcess) -> None:
    """A client that sends one byte of its body at a time, each well within the timeout, is
    still cut off: the whole body must arrive in time, not just each part of it."""
    port = int(https_issuer.url.rsplit(":", 1)[1])
    trickled = ClosureWatch(
        port,
        b"POST /token HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 400\r\n\r\n",
    )
    try:
        for byte in (b"g" * 400)[: int(4 * (BODY_READ_TIMEOUT + 15))]:
            if trickled.closed.wait(BODY_READ_TIMEOUT / 8):
                break
            with contextlib.suppress(OSError):
                trickled.sock.sendall(bytes([byte]))
        closed_after = trickled.wait_closed(BODY_READ_TIMEOUT + 15)
    finally:
        trickled.close()
    assert closed_after is not None, "a trickled body still holds its connection"
    assert closed_after >= BODY_READ_TIMEOUT - 0.5
    assert trickled.received.startswith(b"HTTP/1.1 408"), trickled.received
    assert https_issuer.alive()


# -- start-up errors ------------------------------------------------------------------------


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_serve_refuses_a_postgresql_schema_without_migrations(
    database_url: str, tmp_path: Path
) -> None:
    port = free_port()
    done = run_idp(["serve", "--port", str(port)], make_env(database_url, port), tmp_path)
    line = one_line_error(done, 1)
    assert line.startswith("idp: error:")
    assert "idp migrate" in line


def test_serve_exits_when_the_database_does_not_answer(tmp_path: Path) -> None:
    port = free_port()
    nothing_listens = f"postgresql://postgres@127.0.0.1:{free_port()}/postgres"
    done = run_idp(["serve", "--port", str(port)], make_env(nothing_listens, port), tmp_path)
    line = one_line_error(done, 1)
    assert line.startswith("idp: error:")
    assert "cannot connect" in line


def test_serve_rejects_a_bad_setting(tmp_path: Path) -> None:
    port = free_port()
    env = make_env(f"sqlite:///{tmp_path}/idp.db", port, IDP_JWKS_MAX_AGE="-5")
    done = run_idp(["serve", "--port", str(port)], env, tmp_path)
    line = one_line_error(done, 2)
    assert line.startswith("idp: configuration error:")
    assert "IDP_JWKS_MAX_AGE" in line
    assert not (tmp_path / "idp.db").exists()


# -- several workers ------------------------------------------------------------------------


def worker_pids(server: ServeProcess) -> list[int]:
    return [int(pid) for pid in re.findall(r"Spawning worker-\d+ with PID: (\d+)", server.stdout())]


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_two_workers_on_postgresql_both_serve(database_url: str, tmp_path: Path) -> None:
    """Every request over many fresh connections is answered, every token verifies, and
    /metrics counts the tokens of both workers."""
    port = free_port()
    env = server_env(database_url, port, tmp_path)
    client = create_client(env, tmp_path, "busy-service", "RS256")
    temporary = tmp_path / "tmp"  # where idp serve makes the workers' metrics directory
    temporary.mkdir()
    with (
        serving({**env, "TMPDIR": str(temporary)}, tmp_path, port, "--workers", "2") as server,
        # No keep-alive: every request opens a fresh connection for either worker to accept.
        httpx.Client(
            base_url=server.url, timeout=10, limits=httpx.Limits(max_keepalive_connections=0)
        ) as http,
    ):
        assert "with 2 worker(s)" in server.stdout()
        wait_for(lambda: len(worker_pids(server)) == 2, 10, message="two workers spawned")
        wait_for(
            lambda: len(re.findall(r"Started worker-\d+$", server.stdout(), re.MULTILINE)) == 2,
            20,
            message="both workers started",
        )
        jwks, _ = fetch_jwks(http)
        keys = KeySet.import_key_set(jwks)

        def one_request(_: int) -> str:
            return get_token(http, client)

        with ThreadPoolExecutor(max_workers=8) as pool:
            tokens = list(pool.map(one_request, range(120)))
        assert len(set(tokens)) == len(tokens)
        for token in tokens:
            claims = jwt.decode(token, keys, algorithms=["RS256"]).claims
            assert claims["client_id"] == client["client_id"]
        verify(server.url, jwks, tokens[-1], client)

        # Hold several answered keep-alive connections open: both workers own some of them.
        pids = worker_pids(server)
        held: list[HTTPConnection] = []
        try:
            for _ in range(2):
                for _ in range(16):
                    connection = HTTPConnection("127.0.0.1", port, timeout=10)
                    held.append(connection)
                    connection.request(
                        "POST",
                        "/token",
                        "grant_type=client_credentials",
                        {
                            **client_basic(client),
                            "Content-Type": "application/x-www-form-urlencoded",
                        },
                    )
                    answer = connection.getresponse()
                    assert answer.status == 200
                    token = json.loads(answer.read())["access_token"]
                    assert jwt.decode(token, keys, algorithms=["RS256"]).claims["sub"]
                owners = connections_by_pid(port, pids)
                if all(owners.values()):
                    break
            assert all(owners.values()), f"connections held per worker: {owners}"
        finally:
            for connection in held:
                connection.close()

        # Every scrape, whichever worker answers it, adds up both workers' counts.
        issued = len(tokens) + len(held)
        for _ in range(8):
            assert issued_tokens(http.get("/metrics").text) == issued
        (shared,) = list(temporary.glob("idp-metrics-*"))
        assert {f"counter_{pid}.db" for pid in pids} <= {path.name for path in shared.iterdir()}

        # Each worker follows a rotation by itself: soon every answer carries the new kid.
        rotated = idp_json(["keys", "rotate", "--alg", "RS256"], env, tmp_path)

        def all_rotated() -> bool:
            with ThreadPoolExecutor(max_workers=8) as pool:
                batch = list(pool.map(one_request, range(24)))
            return all(header_of(t)["kid"] == rotated["active_kid"] for t in batch)

        wait_for(all_rotated, KEY_CHANGE_WAIT, message="every worker signs with the new key")
        assert server.stderr().count("key ring reloaded") == 2
        assert server.alive()
    assert not shared.exists(), "the shared metrics directory outlived the server"


def issued_tokens(exposition: str) -> float:
    """The client_credentials RS256 tokens counted in a Prometheus text exposition."""
    for line in exposition.splitlines():
        if line.startswith("idp_tokens_issued_total{") and 'alg="RS256"' in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0
