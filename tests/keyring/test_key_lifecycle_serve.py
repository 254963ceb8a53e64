"""Whole key lifecycles in real ``idp serve`` processes, with intervals of seconds.

One server on each store watched through JWKS and /token; three replicas on one PostgreSQL
schema with a client issuing tokens round-robin and a caching verifier; and a replica killed
in the middle of a scheduled rotation.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import os
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from idp.admin.context import AdminContext
from idp.admin.keys import rotate_keys
from idp.config import load_settings
from idp.keyring.changes import ensure_key_rings
from tests.support.processes import (
    ServeProcess,
    client_basic,
    create_client,
    header_of,
    idp_json,
    migrate,
    start_serve,
    wait_for,
)
from tests.support.server import free_port, make_env, pg_base_url, with_store

pytestmark = pytest.mark.slow

ALGS = ("RS256", "ES256")
# Rotate every 3 s; JWKS cached 1 s, so keys are pre-published 2 s; tokens live 2 s, so a
# retired key stays published 2 + 1 = 3 s.
FAST_LIFECYCLE = {
    "IDP_KEY_ROTATION_INTERVAL": "3",
    "IDP_JWKS_MAX_AGE": "1",
    "IDP_ACCESS_TOKEN_TTL": "2",
    "IDP_ID_TOKEN_TTL": "2",
}


@dataclass
class Sample:
    at: float
    kids: frozenset[str]


@dataclass
class Issued:
    at: float
    kid: str
    exp: int
    token: str


def fetch(http: httpx.Client, url: str) -> tuple[bytes, str]:
    response = http.get(f"{url}/jwks.json")
    assert response.status_code == 200
    return response.content, response.headers["etag"]


def kids_of(body: bytes) -> frozenset[str]:
    return frozenset(k["kid"] for k in httpx.Response(200, content=body).json()["keys"])


def token_of(http: httpx.Client, url: str, client: dict[str, Any]) -> str:
    response = http.post(
        f"{url}/token", data={"grant_type": "client_credentials"}, headers=client_basic(client)
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


@contextlib.contextmanager
def replicas(
    env: dict[str, str], cwd: Path, ports: list[int], names: list[str]
) -> Iterator[list[ServeProcess]]:
    """Several ``idp serve`` processes on one store, stopped whatever happens."""
    started: list[ServeProcess] = []
    try:
        for port, name in zip(ports, names, strict=True):
            started.append(start_serve(env, cwd, port, name=name))
        for server in started:
            server.wait_ready()
        yield started
    finally:
        for server in started:
            server.stop()


def audit(database_url: str) -> list[Any]:
    return with_store(database_url, lambda store: store.list_audit())


# -- one server, whole timeline, both stores -------------------------------------------------


def test_whole_lifecycle_in_jwks_and_tokens(database_url: str, tmp_path: Path) -> None:
    """next -> active -> retired -> expired, seen from outside, every step by the scheduler.

    Every kid a token carries was in JWKS for at least the cache lifetime before its first
    token, and stays in JWKS until every token it signed has expired.
    """
    port = free_port()
    env = make_env(database_url, port, IDP_SIGNING_ALGS="ES256", **FAST_LIFECYCLE)
    migrate(env, tmp_path)
    client = create_client(env, tmp_path, "lifecycle", "ES256")
    samples: list[Sample] = []
    issued: list[Issued] = []
    server = start_serve(env, tmp_path, port)
    try:
        server.wait_ready()
        started = time.time()
        with httpx.Client(timeout=10) as http:
            while time.time() - started < 10.5:
                token = token_of(http, server.url, client)
                at = time.time()
                body, _ = fetch(http, server.url)
                samples.append(Sample(time.time(), kids_of(body)))
                claims = jwt.decode(
                    token, KeySet.import_key_set(httpx.Response(200, content=body).json())
                ).claims
                issued.append(Issued(at, header_of(token)["kid"], claims["exp"], token))
                time.sleep(0.05)
        log = server.stderr()
    finally:
        server.stop()

    order = list(dict.fromkeys(t.kid for t in issued))
    assert len(order) >= 3, f"expected at least two scheduled rotations, kids: {order}"
    first_in_jwks = {}
    for sample in samples:
        for kid in sample.kids:
            first_in_jwks.setdefault(kid, sample.at)
    first_token = {}
    for token in issued:
        first_token.setdefault(token.kid, token.at)
    for kid in order[1:]:
        published_for = first_token[kid] - first_in_jwks[kid]
        assert published_for >= 1.0, f"{kid} signed {published_for:.2f} s after publication"
    for token in issued:
        for sample in samples:
            if token.at <= sample.at <= token.exp - 0.05:
                assert token.kid in sample.kids, "a key left JWKS before its token expired"

    # The first key has expired: out of JWKS, row kept, private part erased.
    keys = {k.kid: k for k in with_store(database_url, lambda store: store.list_keys())}
    assert keys[order[0]].state == "expired" and keys[order[0]].private_key_sealed is None
    assert order[0] not in samples[-1].kids
    assert keys[order[1]].state in ("retired", "expired")
    entries = [e for e in audit(database_url) if e.action.startswith("key.")]
    by_scheduler = {e.action for e in entries if e.actor == "scheduler"}
    assert {"key.activate", "key.retire", "key.create", "key.expire"} <= by_scheduler
    assert {e.actor for e in entries} == {"system", "scheduler"}
    activations = [e.target for e in entries if e.action == "key.activate"]
    assert activations == order[1 : len(activations) + 1]
    assert "key ring scheduler: ES256: rotated" in log
    assert "Traceback" not in log


# -- three replicas on one PostgreSQL ------------------------------------------------------


class CachingVerifier:
    """A resource server: caches JWKS, refetches from any replica on an unknown kid, but at
    most once per second; a token whose kid it still does not know is a failure."""

    def __init__(self, urls: list[str]) -> None:
        self._urls = itertools.cycle(urls)
        self._keys: KeySet | None = None
        self._kids: frozenset[str] = frozenset()
        self._fetched = 0.0
        self.refetches = 0
        self.failures: list[str] = []
        self._http = httpx.Client(timeout=10)

    def _refetch(self) -> None:
        body, _ = fetch(self._http, next(self._urls))
        document = httpx.Response(200, content=body).json()
        self._keys = KeySet.import_key_set(document)
        self._kids = frozenset(k["kid"] for k in document["keys"])
        self._fetched = time.monotonic()
        self.refetches += 1

    def verify(self, token: str) -> None:
        kid = header_of(token)["kid"]
        if kid not in self._kids and time.monotonic() - self._fetched >= 1.0:
            self._refetch()
        if kid not in self._kids or self._keys is None:
            self.failures.append(f"unknown kid {kid}")
            return
        try:
            claims = jwt.decode(token, self._keys).claims
        except (JoseError, ValueError) as exc:
            self.failures.append(f"{kid}: {exc}")
            return
        if claims["exp"] < time.time() - 1:
            self.failures.append(f"{kid}: expired at issue")

    def close(self) -> None:
        self._http.close()


@dataclass
class Agreement:
    """JWKS of every replica sampled side by side: how long they ever disagreed."""

    urls: list[str]
    longest_disagreement: float = 0.0
    changes: int = 0
    errors: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        since: float | None = None
        last: str | None = None
        with httpx.Client(timeout=10) as http:
            while not self._stop.is_set():
                answers = [fetch(http, url) for url in self.urls]
                now = time.monotonic()
                etags = {etag for _, etag in answers}
                if len(etags) == 1:
                    bodies = {body for body, _ in answers}
                    if len(bodies) != 1:
                        self.errors.append("same ETag, different bytes")
                    if last != answers[0][1]:
                        self.changes += 1
                        last = answers[0][1]
                    if since is not None:
                        self.longest_disagreement = max(self.longest_disagreement, now - since)
                    since = None
                elif since is None:
                    since = now
                for body, etag in answers:
                    expected = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
                    if etag != expected:
                        self.errors.append("ETag does not match the bytes")
                time.sleep(0.1)
        if since is not None:
            self.longest_disagreement = max(self.longest_disagreement, time.monotonic() - since)

    def stop(self) -> None:
        self._stop.set()


def last_scheduled_rotation(database_url: str, after: float) -> float:
    """When the scheduler last activated a key, if later than ``after`` (else 0)."""
    times = [
        e.at
        for e in audit(database_url)
        if e.action == "key.activate" and e.actor == "scheduler" and e.at > after
    ]
    return max(times, default=0.0)


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_three_replicas_rotate_as_one(database_url: str, tmp_path: Path) -> None:
    """Scheduled rotations every 3 s and manual ones in between; no token ever fails."""
    ports = [free_port() for _ in range(3)]
    env = make_env(database_url, ports[0], **FAST_LIFECYCLE)
    migrate(env, tmp_path)
    settings = load_settings(env)
    clients = [create_client(env, tmp_path, f"svc-{alg}", alg) for alg in ALGS]
    urls = [f"http://127.0.0.1:{port}" for port in ports]
    verifier = CachingVerifier(urls)
    agreement = Agreement(urls)
    issued: list[str] = []
    with replicas(env, tmp_path, ports, ["a", "b", "c"]) as servers:
        watcher = threading.Thread(target=agreement.run, daemon=True)
        watcher.start()
        stop = threading.Event()

        def issue() -> None:
            targets = itertools.cycle(itertools.product(urls, clients))
            with httpx.Client(timeout=10) as http:
                while not stop.is_set():
                    url, client = next(targets)
                    token = token_of(http, url, client)
                    issued.append(token)
                    verifier.verify(token)

        issuer = threading.Thread(target=issue, daemon=True)
        issuer.start()
        try:
            started = time.monotonic()
            hasty = 0
            seen = 0.0
            for round_ in itertools.count():
                if time.monotonic() - started > 20:
                    break
                # Right after each scheduled rotation... (its `next` key is new)
                scheduled = wait_for(
                    lambda after=seen: last_scheduled_rotation(database_url, after),
                    10,
                    0.1,
                    "a scheduled rotation",
                )
                seen = scheduled
                # ...rotate by hand: with the CLI once that key has been pre-published, or
                # (the rapid case) twice in a row at once, promoting keys published for
                # under a second: the keys they replace keep signing meanwhile, everywhere.
                if round_ % 2:
                    time.sleep(max(0.0, scheduled + 2.2 - time.time()))
                    idp_json(["keys", "rotate"], env, tmp_path)
                    continue
                time.sleep(max(0.0, scheduled + 0.3 - time.time()))
                for _ in range(2):
                    done = with_store(
                        database_url, lambda s: rotate_keys(AdminContext(s, settings), ALGS)
                    )
                    hasty += sum(1 for r in done if r.warning)
        finally:
            stop.set()
            issuer.join(15)
            agreement.stop()
            watcher.join(15)
            verifier.close()
        logs = [server.stderr() for server in servers]
        assert all(server.alive() for server in servers)

    print(
        f"replicas: {len(issued)} tokens, {verifier.refetches} JWKS refetches, "
        f"{agreement.changes} JWKS versions, longest disagreement "
        f"{agreement.longest_disagreement:.2f} s, {hasty} hasty manual rotations"
    )
    assert verifier.failures == [], verifier.failures[:5]
    assert hasty >= 4, "no rapid manual rotation happened"
    assert round_ >= 2
    kids = {header_of(t)["kid"] for t in issued}
    assert len(issued) > 100 and len(kids) >= 8, (len(issued), len(kids))
    assert not agreement.errors, agreement.errors[:3]
    assert agreement.changes >= 6
    assert agreement.longest_disagreement < 5.0
    entries = [e for e in audit(database_url) if e.action == "key.activate"]
    scheduled = [e for e in entries if e.actor == "scheduler"]
    assert scheduled, "the scheduler rotated nothing"
    # Each transition was made once: no key was activated twice.
    assert len({e.target for e in entries}) == len(entries)
    keys = with_store(database_url, lambda store: store.list_keys())
    for alg in ("RS256", "ES256"):
        assert [k.state for k in keys if k.alg == alg].count("active") == 1
    performers = sum(1 for log in logs if "key ring scheduler: RS256: rotated" in log)
    assert performers >= 1
    assert not any("Traceback" in log for log in logs)


# -- a replica killed in the middle of a rotation -------------------------------------------


async def _pg(sql: str, *args: Any) -> list[asyncpg.Record]:
    connection = await asyncpg.connect(pg_base_url(), timeout=10)
    try:
        return await connection.fetch(sql, *args)
    finally:
        await connection.close()


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_replica_killed_mid_rotation_leaves_the_ring_consistent(
    database_url: str, tmp_path: Path
) -> None:
    """A replica dies after writing half a rotation; it is rolled back and done once, elsewhere.

    The test holds the ring-version row, so the replica that takes the key-ring lock first
    writes its key changes and then waits on that row, mid-transaction; the other replica
    waits for the lock. The first is killed (SIGKILL), the row released: the survivor
    performs the rotation, exactly once.
    """
    ports = [free_port(), free_port()]
    env = make_env(database_url, ports[0], **{**FAST_LIFECYCLE, "IDP_KEY_ROTATION_INTERVAL": "4"})
    migrate(env, tmp_path)
    settings = load_settings(env)
    made = time.time()
    with_store(database_url, lambda store: ensure_key_rings(store, settings, lambda: made))
    before = {k.kid: k.state for k in with_store(database_url, lambda s: s.list_keys())}
    names = ["replica-a", "replica-b"]
    holder: dict[str, Any] = {}

    async def hold_row() -> None:
        connection = await asyncpg.connect(database_url, timeout=10)
        transaction = connection.transaction()
        await transaction.start()
        await connection.execute("SELECT version FROM key_ring_version FOR UPDATE")
        holder.update(connection=connection, transaction=transaction)

    loop = asyncio.new_event_loop()
    started: list[ServeProcess] = []
    try:
        # Held from before the replicas start (starting needs no write to it), so that the
        # rotation due 4 s after the keys were made always meets it, however slow the start.
        loop.run_until_complete(hold_row())
        for port, name in zip(ports, names, strict=True):
            replica_env = {**env, "IDP_DATABASE_URL": f"{database_url}&application_name={name}"}
            started.append(start_serve(replica_env, tmp_path, port, name=name))
        for server in started:
            server.wait_ready()

        def blocked() -> list[asyncpg.Record]:
            return loop.run_until_complete(
                _pg(
                    "SELECT application_name, query FROM pg_stat_activity "
                    "WHERE application_name = ANY($1) AND wait_event_type = 'Lock'",
                    names,
                )
            )

        waiting = wait_for(lambda: len(blocked()) == 2 and blocked(), 20, 0.1, "both blocked")
        mid = next(r for r in waiting if "key_ring_version" in r["query"])
        other = next(r for r in waiting if "advisory" in r["query"])
        victim = started[names.index(mid["application_name"])]
        survivor = started[names.index(other["application_name"])]
        # Still the old ring for everyone else: the half-done rotation is not visible.
        now = {k.kid: k.state for k in with_store(database_url, lambda s: s.list_keys())}
        assert now == before
        os.killpg(victim.process.pid, signal.SIGKILL)
        victim.process.wait(10)
        loop.run_until_complete(holder["transaction"].rollback())
        loop.run_until_complete(holder["connection"].close())

        def rotated() -> bool:
            keys = with_store(database_url, lambda s: s.list_keys())
            return sum(1 for k in keys if k.state == "retired") == 2

        wait_for(rotated, 15, 0.2, "the surviving replica rotates")
        time.sleep(0.5)
        assert survivor.alive()
        with httpx.Client(timeout=10) as http:
            body, _ = fetch(http, survivor.url)
        log = survivor.stderr()
    finally:
        for server in started:
            server.stop()
        if "connection" in holder and not holder["connection"].is_closed():
            loop.run_until_complete(holder["connection"].close())
        loop.close()

    keys = with_store(database_url, lambda s: s.list_keys())
    for alg in ("RS256", "ES256"):
        states = [k.state for k in keys if k.alg == alg]
        assert states.count("active") == 1 and states.count("retired") == 1
        assert states.count("next") == 1 and len(states) == 3
        active = next(k for k in keys if k.alg == alg and k.state == "active")
        assert before[active.kid] == "next"
        assert active.kid in kids_of(body)
    activations = [e for e in audit(database_url) if e.action == "key.activate"]
    assert len(activations) == 2 and {e.actor for e in activations} == {"scheduler"}
    assert "key ring scheduler: RS256: rotated" in log
