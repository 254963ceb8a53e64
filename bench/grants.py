"""Grant flows beyond client_credentials, each against our own client_credentials rate.

Ours only (the peer, oidc-provider in bench/peer, is set up for client_credentials alone).
``idp serve`` (granian, one worker) runs pinned to core 0 on each chosen store; wrk,
pinned to core 1, loads four flows per alg (ES256 and RS256 clients):

- **client_credentials**: ``POST /token`` (RFC 6749 section 4.4), the reference rate;
- **introspection**: ``POST /introspect`` (RFC 7662) of a live access token, each answer
  a 200 with ``"active":true``;
- **authorization_code**: ``POST /token`` redeeming a fresh code with its PKCE verifier
  (RFC 6749 section 4.1.3, RFC 7636), answered with an access token, an ID token and a
  refresh token;
- **refresh_token**: ``POST /token`` rotating a fresh refresh token (RFC 6749 section 6);
- **token_exchange**: ``POST /token`` exchanging the user's access token for one of the
  exchanging client (RFC 8693 section 2): the subject token is verified and its standing
  read from the store, and each exchange writes its ``token.exchange`` audit row.

Codes and refresh tokens are single use, so wrk sends each request a different one, read
from a file (bench/requests.lua, ``BENCH_BODIES``). The pools are minted just before each
run through the store API the server itself uses (:func:`idp.oauth.codes.issue_code`,
:func:`idp.oauth.refresh_tokens.issue_refresh_token`), for a user made with ``idp users
create`` and a confidential client made with ``idp clients create``: signing in through
/authorize and /login costs an argon2id hash per login and could not mint thousands of
codes within a code's 60 s lifetime. A subject token may be exchanged again and again, so
the token exchange sends one body throughout, made from the web client's own user token
(the web client is registered for token exchange too). Every round loads the five flows of
each alg back to back, their order rotating round by round; each flow is reported as the
median of its per-round ratio to client_credentials.

Run it as ``bench/grants`` (``--help`` for the options, ``--quick`` for a smoke run).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import math
import secrets
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlencode

from bench import checks, introspection, rounds, service, wrk
from bench import token_endpoint as te
from bench.rounds import Options, Run
from bench.servers import Server
from bench.service import Client, Fixture
from idp.cli import base as cli_base
from idp.clock import system_clock
from idp.config import Settings, load_settings
from idp.oauth.authorization import AuthorizationRequest
from idp.oauth.codes import CODE_LIFETIME, issue_code
from idp.oauth.refresh_tokens import issue_refresh_token
from idp.store.base import Store

NAME = "grants"
SERVER_CORES = "0"
LOAD_CORES = "1"
REDIRECT_URI = "https://app.example.test/callback"
SCOPE = ("openid", "api.read")
CLIENT_SCOPE = "openid api.read api.write"
USERNAME = "bench-user"
POOL_MARGIN = 2.0
POOL_EXTRA = 200
FIRST_GUESS = 2000.0
MINT_BATCH = 64
CC, INTROSPECTION, CODE, REFRESH, EXCHANGE = (
    "client_credentials",
    "introspection",
    "authorization_code",
    "refresh_token",
    "token_exchange",
)
FLOWS = (CC, INTROSPECTION, CODE, REFRESH, EXCHANGE)
TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"
SINGLE_USE = (CODE, REFRESH)
T = TypeVar("T")


@dataclass(frozen=True)
class Setup:
    """The running service, its settings, and who the flows act for."""

    server: Server
    settings: Settings
    fixture: Fixture
    web: dict[str, Client]
    user_id: str
    workdir: Path
    verifier: str


# -- set-up -------------------------------------------------------------------------------


def s256_challenge(verifier: str) -> str:
    """The S256 code challenge of a PKCE verifier (RFC 7636 section 4.2)."""
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _cli_json(env: dict[str, str], *args: str, stdin: str | None = None) -> Any:
    return json.loads(
        service.run_command([str(service.IDP), *args, "--json"], env=env, stdin=stdin)
    )


def register(fixture: Fixture) -> tuple[str, dict[str, Client]]:
    """A user, and per alg a confidential client for the code and refresh grants."""
    env = fixture.with_issuer("http://127.0.0.1:8000")
    password = secrets.token_urlsafe(16)
    user = _cli_json(
        env, "users", "create", "--username", USERNAME, "--password-stdin", stdin=password
    )
    web = {}
    for alg in service.ALGS:
        document = _cli_json(
            env,
            "clients",
            "create",
            "--name",
            f"bench-web-{alg.lower()}",
            "--redirect-uri",
            REDIRECT_URI,
            "--grant-type",
            "authorization_code",
            "--grant-type",
            "refresh_token",
            "--grant-type",
            TOKEN_EXCHANGE,
            "--scope",
            CLIENT_SCOPE,
            "--access-token-alg",
            alg,
        )
        web[alg] = Client(alg, document["client_id"], document["client_secret"])
    return str(user["id"]), web


def with_store(settings: Settings, work: Callable[[Store], Awaitable[T]]) -> T:
    """Run ``work`` on the service's store, opened in this process as ``idp`` commands do."""
    return asyncio.run(cli_base.with_store(settings, work))


async def _batched(count: int, make: Callable[[], Awaitable[str]]) -> list[str]:
    made: list[str] = []
    while len(made) < count:
        made += await asyncio.gather(*(make() for _ in range(min(MINT_BATCH, count - len(made)))))
    return made


def mint_codes(setup: Setup, alg: str, count: int) -> list[str]:
    """``count`` fresh codes for the alg's web client, as /authorize would issue them."""
    request = AuthorizationRequest(
        client_id=setup.web[alg].client_id,
        redirect_uri=REDIRECT_URI,
        scope=SCOPE,
        state=None,
        nonce=secrets.token_urlsafe(8),
        code_challenge=s256_challenge(setup.verifier),
        code_challenge_method="S256",
        prompt=(),
        max_age=None,
        login_hint=None,
    )
    sid, auth_time = secrets.token_urlsafe(16), time.time()

    async def work(store: Store) -> list[str]:
        return await _batched(
            count,
            lambda: issue_code(
                store, system_clock, request, user_id=setup.user_id, sid=sid, auth_time=auth_time
            ),
        )

    return with_store(setup.settings, work)


def mint_refresh_tokens(setup: Setup, alg: str, count: int) -> list[str]:
    """``count`` fresh refresh tokens of the alg's web client, each the first of its family."""
    sid, auth_time = secrets.token_urlsafe(16), time.time()

    async def work(store: Store) -> list[str]:
        return await _batched(
            count,
            lambda: issue_refresh_token(
                store,
                setup.settings,
                system_clock,
                client_id=setup.web[alg].client_id,
                user_id=setup.user_id,
                scope=SCOPE,
                sid=sid,
                auth_time=auth_time,
                offline=False,
                family_id=secrets.token_urlsafe(16),
            ),
        )

    return with_store(setup.settings, work)


def code_body(code: str, verifier: str) -> str:
    return urlencode(
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT_URI,
            "code_verifier": verifier,
        }
    )


def refresh_body(token: str) -> str:
    return urlencode({"grant_type": "refresh_token", "refresh_token": token})


def exchange_body(subject_token: str) -> str:
    return urlencode(
        {
            "grant_type": TOKEN_EXCHANGE,
            "subject_token": subject_token,
            "subject_token_type": ACCESS_TOKEN_TYPE,
        }
    )


def user_token(setup: Setup, alg: str) -> str:
    """An access token of the bench user, issued to the alg's web client by a redeemed code."""
    (code,) = mint_codes(setup, alg, 1)
    web = setup.web[alg].basic_credentials
    issued = json.loads(
        checks.fetch(setup.server.base_url + "/token", web, code_body(code, setup.verifier))
    )
    token: str = issued["access_token"]
    return token


def check_flows(setup: Setup) -> None:
    """Each flow answers as it should once, before anything is measured."""
    token_url = setup.server.base_url + "/token"
    jwks = checks.fetch(setup.server.base_url + "/jwks.json")
    for alg in service.ALGS:
        basic = setup.fixture.clients[alg].basic_credentials
        access = checks.check_service_token(token_url, basic, alg, jwks)
        introspection.check_active(setup.server.base_url + "/introspect", basic, access)
        web = setup.web[alg].basic_credentials
        (code,) = mint_codes(setup, alg, 1)
        issued = json.loads(checks.fetch(token_url, web, code_body(code, setup.verifier)))
        if not {"access_token", "id_token", "refresh_token"} <= issued.keys():
            raise RuntimeError(f"{alg}: code redemption answered {sorted(issued)}")
        rotated = json.loads(checks.fetch(token_url, web, refresh_body(issued["refresh_token"])))
        if rotated.get("refresh_token") in (None, issued["refresh_token"]):
            raise RuntimeError(f"{alg}: refresh did not rotate the token: {sorted(rotated)}")
        exchanged = json.loads(checks.fetch(token_url, web, exchange_body(issued["access_token"])))
        if exchanged.get("issued_token_type") != ACCESS_TOKEN_TYPE:
            raise RuntimeError(f"{alg}: token exchange answered {sorted(exchanged)}")


# -- measuring ----------------------------------------------------------------------------


@dataclass
class Pools:
    """Sizes the single-use pools from the rates seen so far, and records each minting."""

    setup: Setup
    rates: dict[tuple[str, str], float]
    minted: list[dict[str, Any]]

    def size(self, alg: str, flow: str, seconds: int) -> int:
        rate = self.rates.get((alg, flow)) or self.rates.get((alg, CC), FIRST_GUESS)
        return math.ceil(rate * seconds * POOL_MARGIN) + POOL_EXTRA

    def write(self, alg: str, flow: str, seconds: int) -> tuple[Path, int]:
        """Mint a pool for a run of ``seconds``; the file of request bodies and its size."""
        count = self.size(alg, flow, seconds)
        started = time.monotonic()
        if flow == CODE:
            bodies = [code_body(c, self.setup.verifier) for c in mint_codes(self.setup, alg, count)]
        else:
            bodies = [refresh_body(t) for t in mint_refresh_tokens(self.setup, alg, count)]
        elapsed = time.monotonic() - started
        path = self.setup.workdir / f"{flow}-{alg}.bodies"
        path.write_text("\n".join(bodies) + "\n")
        self.minted.append({"alg": alg, "flow": flow, "count": count, "seconds": elapsed})
        print(f"  minted {count} for {alg} {flow} in {elapsed:.1f} s", flush=True)
        if flow == CODE and elapsed + seconds > CODE_LIFETIME - 5:
            print(f"  warning: minting took {elapsed:.0f} s; codes may expire mid-run", flush=True)
        return path, count


def load_for(setup: Setup, pools: Pools, alg: str, flow: str, seconds: int) -> rounds.Load:
    """What wrk sends for one flow (minting a fresh pool for the single-use ones)."""
    basic = setup.fixture.clients[alg].basic_credentials
    if flow == CC:
        return rounds.Load(setup.server, "/token", wrk.Request(basic=basic), LOAD_CORES)
    if flow == INTROSPECTION:
        access = json.loads(checks.fetch(setup.server.base_url + "/token", basic))["access_token"]
        request = wrk.Request(
            basic=basic, body=introspection.form(access), expect=introspection.ACTIVE
        )
        return rounds.Load(setup.server, "/introspect", request, LOAD_CORES)
    if flow == EXCHANGE:
        web = setup.web[alg].basic_credentials
        body = exchange_body(user_token(setup, alg))
        exchange = wrk.Request(basic=web, body=body, expect='"issued_token_type"')
        return rounds.Load(setup.server, "/token", exchange, LOAD_CORES)
    path, _ = pools.write(alg, flow, seconds)
    expect = '"id_token"' if flow == CODE else '"refresh_token"'
    request = wrk.Request(basic=setup.web[alg].basic_credentials, bodies=path, expect=expect)
    return rounds.Load(setup.server, "/token", request, LOAD_CORES)


def run_flow(
    wrk_path: str, setup: Setup, pools: Pools, key: tuple[str, str], seconds: int, conns: int
) -> tuple[wrk.WrkResult, float, float]:
    """Load one flow of one alg for ``seconds``; remember its rate for sizing pools."""
    alg, flow = key
    load = load_for(setup, pools, alg, flow, seconds)
    measured = rounds.measure(wrk_path, load, seconds, conns)
    result = measured[0]
    if flow in SINGLE_USE and result.requests > pools.minted[-1]["count"]:
        print(f"  {alg} {flow}: the pool of {pools.minted[-1]['count']} ran out", flush=True)
    if result.ok:
        pools.rates[key] = max(pools.rates.get(key, 0.0), result.requests_per_second)
    return measured


def bench_store(
    wrk_path: str, options: Options, store: str, minted: list[dict[str, Any]]
) -> list[Run]:
    """Set the service up on ``store``, check every flow, warm up, then the rounds."""
    runs: list[Run] = []
    with (
        rounds.store_fixture(store, options.database_url) as (fixture, workdir),
        contextlib.ExitStack() as stack,
    ):
        user_id, web = register(fixture)
        server = rounds.serve(stack, fixture, workdir, workers=1, cores=SERVER_CORES)
        settings = load_settings(fixture.with_issuer(server.base_url))
        verifier = secrets.token_urlsafe(48)
        setup = Setup(server, settings, fixture, web, user_id, workdir, verifier)
        check_flows(setup)
        pools = Pools(setup, {}, [])
        print(f"{store}: 1 worker on core {SERVER_CORES}, wrk on core {LOAD_CORES}", flush=True)
        for alg in service.ALGS:
            for flow in FLOWS if options.warmup else ():
                run_flow(wrk_path, setup, pools, (alg, flow), options.warmup, options.connections)
        for index in range(1, options.rounds + 1):
            for alg in service.ALGS:
                for flow in te.rotated(FLOWS, index):
                    measured = run_flow(
                        wrk_path, setup, pools, (alg, flow), options.duration, options.connections
                    )
                    run = Run(store, alg, flow, index, *measured)
                    rounds.print_run(run)
                    runs.append(run)
        minted += [{"store": store, **m} for m in pools.minted]
    return runs


# -- reporting ----------------------------------------------------------------------------


def summarize(runs: Sequence[Run]) -> list[dict[str, Any]]:
    """Per store, alg and flow: medians over rounds, and the paired ratio to client_credentials."""
    rows = []
    for store in dict.fromkeys(r.store for r in runs):
        for alg in service.ALGS:
            mine = [r for r in runs if r.store == store and r.scenario == alg]
            for flow in FLOWS:
                row: dict[str, Any] = {"store": store, "alg": alg, "flow": flow}
                row.update(rounds.target_summary([r for r in mine if r.target == flow]))
                row["vs_client_credentials"] = rounds.paired_ratio(
                    mine, rounds.target_is(flow), rounds.target_is(CC)
                )
                rows.append(row)
    return rows


def table(rows: Sequence[dict[str, Any]]) -> str:
    """The summary as a Markdown table."""
    lines = [
        "| store | alg | flow | req/s | vs client_credentials | p99 | server CPU |",
        "|---|---|---|---:|---:|---:|---:|",
    ]
    for row in rows:
        cells = [
            row["store"],
            row["alg"],
            row["flow"],
            rounds.cell(row["requests_per_second"], ",.0f"),
            rounds.cell(row["vs_client_credentials"], ".0%"),
            rounds.cell(row["p99_ms"], ".2f", " ms"),
            rounds.cell(row["server_cpu"], ".0%"),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Measure every store, print the table, write JSON; exit 1 if any run failed."""
    made = rounds.parser(
        "bench/grants",
        "Introspection, code redemption, refresh rotation and token exchange against "
        "client_credentials.",
    )
    options = rounds.options(made, argv, NAME)
    wrk_path = te.get_ready(peer=False)
    started = te.moment("start")
    minted: list[dict[str, Any]] = []
    runs = [r for store in options.stores for r in bench_store(wrk_path, options, store, minted)]
    rows = summarize(runs)
    print()
    print(table(rows))
    rounds.note_other_work(runs)
    return rounds.finish(options, started, {"summary": rows, "minted": minted}, runs)


if __name__ == "__main__":
    sys.exit(main())
