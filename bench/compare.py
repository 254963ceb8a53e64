"""Our token service against its ceiling and a peer, endpoint by endpoint, in one run.

Three targets run side by side, each one process pinned to core 0:

- **ours**: ``idp serve`` (granian, one worker) on a throwaway store (SQLite in a temp
  directory, or a fresh PostgreSQL database), with real clients looked up in it;
- **ceiling**: bare Starlette apps under the same granian launcher (bench/bare_app.py) that
  sign the same claims with an in-memory key and answer our JWKS and discovery bytes;
- **peer**: oidc-provider on Node (bench/peer), the OpenID-certified reference.

wrk, pinned to core 1, loads one target at a time: the token endpoint (client_credentials,
ES256 and RS256), JWKS (200), JWKS revalidation (If-None-Match, 304), discovery, and
introspection of an access token. Every round loads every target of every endpoint back
to back, the targets' order rotating round by round; figures are medians over rounds, and
ratios are medians of the per-round ratios. The raw RS256 and ES256 signing rate of the
``cryptography`` library on core 0 (bench/signing.py) is measured too, to put our token
rate against it.

Run it as ``bench/compare`` (``--help`` for the options, ``--quick`` for a smoke run).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench import bare_app, checks, introspection, peer_server, servers, service, signing, wrk
from bench import token_endpoint as te
from bench.servers import Server
from bench.token_endpoint import Measurement

OURS, CEILING, PEER = "ours", "ceiling", "peer"
TARGETS = (OURS, CEILING, PEER)
SERVER = "granian"
STORES = ("sqlite", "postgresql")
DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
CONNECTIONS = 16
THREADS = 1
TIMEOUT = 10
JWKS_PATH = "/jwks.json"
INTROSPECTION_PATH = "/introspect"
ACTIVE = introspection.ACTIVE
PEER_INTROSPECTION_NOTE = (
    "not like for like: the peer introspects an opaque token (a lookup in its in-memory "
    "store; it refuses to introspect its JWT access tokens), ours checks a JWT's signature "
    "and claims and reads the client, key ring and revocations from our store"
)


@dataclass(frozen=True)
class Options:
    """How long to load each target, how often, and on which store."""

    rounds: int
    duration: int
    warmup: int
    signing_seconds: float
    store: str
    database_url: str
    output: Path | None

    def as_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "output": str(self.output) if self.output else None}


@dataclass(frozen=True)
class Request:
    """Where wrk sends its requests for one target, and what they are."""

    server: Server
    path: str
    load: wrk.Request = field(default_factory=wrk.Request)


@dataclass(frozen=True)
class Scenario:
    """One endpoint: the request per target, why a target is left out, what differs."""

    key: str
    name: str
    requests: dict[str, Request]
    missing: dict[str, str] = field(default_factory=dict)
    note: str | None = None


# -- options ------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(
        prog="bench/compare",
        description="Our token service against a bare-Starlette ceiling and oidc-provider.",
    )
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default 3)")
    parser.add_argument("--duration", type=int, help="seconds per target and round (10)")
    parser.add_argument("--warmup", type=int, help="seconds of warm-up per target (3)")
    parser.add_argument("--signing-seconds", type=float, help="seconds per signing run and alg (3)")
    parser.add_argument("--store", choices=STORES, default="sqlite", help="our store (sqlite)")
    parser.add_argument(
        "--database-url",
        default=None,
        help="PostgreSQL server where --store postgresql makes (and drops) a fresh database "
        "(default: $IDP_TEST_DATABASE_URL or " + DEFAULT_ADMIN_URL + ")",
    )
    te.add_run_arguments(parser, "smoke run: 3 rounds of 2 s, 1 s warm-up, 0.5 s signing")
    args = parser.parse_args(argv)
    quick = args.quick
    options = Options(
        rounds=args.rounds or 3,
        duration=args.duration or (2 if quick else 10),
        warmup=args.warmup if args.warmup is not None else (1 if quick else 3),
        signing_seconds=args.signing_seconds or (0.5 if quick else 3.0),
        store=args.store,
        database_url=args.database_url
        or os.environ.get("IDP_TEST_DATABASE_URL", DEFAULT_ADMIN_URL),
        output=te.output_path(args, "compare"),
    )
    if min(options.rounds, options.duration) < 1 or options.signing_seconds <= 0:
        parser.error("--rounds, --duration and --signing-seconds must be positive")
    return options


# -- set-up and checks --------------------------------------------------------------------


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    """GET ``url``: the status, the headers (lower-case names) and the body."""
    request = urllib.request.Request(url, headers=headers or {})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:  # noqa: S310
            found = {k.lower(): v for k, v in response.headers.items()}
            return response.status, found, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read()


def expect_status(url: str, status: int, headers: dict[str, str] | None = None) -> None:
    """``url`` must answer ``status`` (with ``headers`` sent)."""
    found, _, body = get(url, headers)
    if found != status:
        raise RuntimeError(f"{url} answered {found}, expected {status}: {body[:200]!r}")


def our_etag(stack: te.Stack) -> str:
    """Our JWKS ETag; the ceiling must serve the same bytes with the same ETag."""
    status, headers, body = get(stack.service.base_url + JWKS_PATH)
    _, bare_headers, bare_body = get(stack.bare["RS256"].base_url + JWKS_PATH)
    if status != 200 or "etag" not in headers:
        raise RuntimeError(f"our JWKS answered {status} with headers {headers}")
    if (bare_body, bare_headers.get("etag")) != (body, headers["etag"]):
        raise RuntimeError("the ceiling serves other JWKS bytes or another ETag than ours")
    return headers["etag"]


def peer_etag(peer: Server) -> str | None:
    """The peer's JWKS ETag when it revalidates (answers 304 for it), else None."""
    _, headers, _ = get(peer.base_url + peer_server.JWKS_PATH)
    etag = headers.get("etag")
    if etag is None:
        return None
    status, _, _ = get(peer.base_url + peer_server.JWKS_PATH, {"If-None-Match": etag})
    return etag if status == 304 else None


@dataclass(frozen=True)
class Targets:
    """The running targets and what the scenarios need from them."""

    stack: te.Stack
    fixture: service.Fixture
    etag: str
    peer_etag: str | None

    @property
    def peer(self) -> Server:
        if self.stack.peer is None:
            raise RuntimeError("the peer is not running")
        return self.stack.peer


def check(targets: Targets) -> None:
    """Before measuring: tokens verify, 304s and discovery answer as the scenarios expect."""
    te.verify(targets.stack, targets.fixture)
    conditional = {"If-None-Match": targets.etag}
    for server in (targets.stack.service, targets.stack.bare["RS256"]):
        expect_status(server.base_url + JWKS_PATH, 304, conditional)
        expect_status(server.base_url + bare_app.DISCOVERY_PATH, 200)
    expect_status(targets.peer.base_url + peer_server.DISCOVERY_PATH, 200)


# -- scenarios ----------------------------------------------------------------------------


def _token_scenario(targets: Targets, alg: str) -> Scenario:
    ours = wrk.Request(basic=targets.fixture.clients[alg].basic_credentials)
    peer = wrk.Request(
        basic=peer_server.basic(peer_server.CLIENTS[alg]), body=peer_server.TOKEN_BODY
    )
    return Scenario(
        f"token-{alg.lower()}",
        f"token {alg}",
        {
            OURS: Request(targets.stack.service, "/token", ours),
            CEILING: Request(targets.stack.bare[alg], "/token", ours),
            PEER: Request(targets.peer, peer_server.TOKEN_PATH, peer),
        },
    )


def _jwks_scenarios(targets: Targets) -> list[Scenario]:
    ours, bare, peer = targets.stack.service, targets.stack.bare["RS256"], targets.peer
    full = Scenario(
        "jwks",
        "jwks 200",
        {
            OURS: Request(ours, JWKS_PATH),
            CEILING: Request(bare, JWKS_PATH),
            PEER: Request(peer, peer_server.JWKS_PATH),
        },
    )
    conditional = wrk.Request(if_none_match=targets.etag, status=304)
    revalidation = {
        OURS: Request(ours, JWKS_PATH, conditional),
        CEILING: Request(bare, JWKS_PATH, conditional),
    }
    missing = {}
    if targets.peer_etag is None:
        missing[PEER] = "its JWKS has no ETag, so it cannot answer 304"
    else:
        peer_conditional = wrk.Request(if_none_match=targets.peer_etag, status=304)
        revalidation[PEER] = Request(peer, peer_server.JWKS_PATH, peer_conditional)
    return [full, Scenario("jwks-304", "jwks 304", revalidation, missing)]


def _discovery_scenario(targets: Targets) -> Scenario:
    return Scenario(
        "discovery",
        "discovery",
        {
            OURS: Request(targets.stack.service, bare_app.DISCOVERY_PATH),
            CEILING: Request(targets.stack.bare["RS256"], bare_app.DISCOVERY_PATH),
            PEER: Request(targets.peer, peer_server.DISCOVERY_PATH),
        },
    )


def _introspection_scenario(targets: Targets, alg: str) -> Scenario:
    """Introspect a fresh access token: ours of ``alg``, the peer's opaque one."""
    client = targets.fixture.clients[alg]
    ours = targets.stack.service
    token = json.loads(checks.fetch(ours.base_url + "/token", client.basic_credentials))[
        "access_token"
    ]
    introspection.check_active(ours.base_url + INTROSPECTION_PATH, client.basic_credentials, token)
    peer_basic = peer_server.basic(peer_server.OPAQUE_CLIENT)
    peer_token = peer_server.opaque_token(targets.peer)
    peer_url = targets.peer.base_url + peer_server.INTROSPECTION_PATH
    introspection.check_active(peer_url, peer_basic, peer_token)
    return Scenario(
        f"introspection-{alg.lower()}",
        f"introspection {alg}",
        {
            OURS: Request(
                ours,
                INTROSPECTION_PATH,
                wrk.Request(
                    basic=client.basic_credentials,
                    body=introspection.form(token),
                    expect=ACTIVE,
                ),
            ),
            PEER: Request(
                targets.peer,
                peer_server.INTROSPECTION_PATH,
                wrk.Request(basic=peer_basic, body=introspection.form(peer_token), expect=ACTIVE),
            ),
        },
        {CEILING: "no bare introspection app"},
        PEER_INTROSPECTION_NOTE,
    )


def scenarios(targets: Targets) -> list[Scenario]:
    """Every scenario, with fresh access tokens to introspect (made anew each round)."""
    return [
        _token_scenario(targets, "ES256"),
        _token_scenario(targets, "RS256"),
        *_jwks_scenarios(targets),
        _discovery_scenario(targets),
        _introspection_scenario(targets, "RS256"),
        _introspection_scenario(targets, "ES256"),
    ]


# -- measuring ----------------------------------------------------------------------------


def load(wrk_path: str, request: Request, seconds: int) -> tuple[wrk.WrkResult, servers.CpuUse]:
    """Load one target with ``request`` for ``seconds``; wrk's result and the core's use."""
    return te.measure_side(
        wrk_path,
        request.server.base_url + request.path,
        request.server,
        request.load,
        seconds=seconds,
        connections=CONNECTIONS,
        threads=THREADS,
    )


def measure_rounds(
    wrk_path: str, options: Options, make: Callable[[], list[Scenario]]
) -> tuple[list[Scenario], list[Measurement]]:
    """Warm every target up, then ``options.rounds`` rounds of every scenario and target.

    ``make`` gives the scenarios afresh for each round; the last round's are returned.
    """
    made = make()
    if options.warmup:
        for scenario in made:
            for request in scenario.requests.values():
                load(wrk_path, request, options.warmup)
    measurements = []
    for index in range(1, options.rounds + 1):
        made = make()
        for scenario in made:
            for target in te.rotated(TARGETS, index):
                chosen = scenario.requests.get(target)
                if chosen is None:
                    continue
                result, cpu = load(wrk_path, chosen, options.duration)
                measurement = Measurement(SERVER, scenario.name, target, index, result, cpu)
                te.print_measurement(measurement)
                measurements.append(measurement)
    return made, measurements


def signing_messages(targets: Targets) -> dict[str, bytes]:
    """The signing input (header.payload) of one of our real access tokens per alg."""
    messages = {}
    for alg, client in targets.fixture.clients.items():
        url = targets.stack.service.base_url + "/token"
        token = json.loads(checks.fetch(url, client.basic_credentials))["access_token"]
        messages[alg] = token.rpartition(".")[0].encode()
    return messages


@contextlib.contextmanager
def database(options: Options) -> Iterator[str | None]:
    """The store's URL: a fresh PostgreSQL database, or None for SQLite in the temp dir."""
    if options.store == "postgresql":
        with service.postgres_database(options.database_url) as url:
            yield url
    else:
        yield None


def run(
    options: Options, wrk_path: str
) -> tuple[list[Scenario], list[Measurement], list[signing.SigningRun]]:
    """Set up every target, check them, measure signing, then the interleaved rounds."""
    with (
        tempfile.TemporaryDirectory(prefix="idp-compare-") as tmp,
        database(options) as database_url,
        contextlib.ExitStack() as stack,
    ):
        workdir = Path(tmp)
        fixture = service.prepare(workdir, te.base_env(), database_url)
        running = te.start_stack(stack, SERVER, fixture, workdir, peer=True)
        if running.peer is None:
            raise RuntimeError("the peer did not start")
        targets = Targets(running, fixture, our_etag(running), peer_etag(running.peer))
        check(targets)
        print(f"signing on core {te.SERVER_CORE} ({options.signing_seconds} s per run)", flush=True)
        signing_runs = signing.measure(
            signing_messages(targets),
            seconds=options.signing_seconds,
            rounds=options.rounds,
            core=te.SERVER_CORE,
        )
        print(
            f"ours ({options.store} store), ceiling and peer on core {te.SERVER_CORE}, "
            f"wrk on core {te.LOAD_CORE}",
            flush=True,
        )
        made, measurements = measure_rounds(wrk_path, options, lambda: scenarios(targets))
        return made, measurements, signing_runs


# -- reporting ----------------------------------------------------------------------------


def paired(
    measurements: Sequence[Measurement], other: str, metric: Callable[[wrk.WrkResult], float]
) -> float | None:
    """Median over rounds of ours/``other`` for ``metric``, both from the same round."""
    values = {(m.run, m.side): metric(m.result) for m in measurements if m.result.ok}
    ratios = [
        values[(index, OURS)] / values[(index, other)]
        for index in sorted({index for index, _ in values})
        if (index, OURS) in values and values.get((index, other))
    ]
    return te.median(ratios) if ratios else None


def summarize(
    names: Sequence[Scenario], measurements: Sequence[Measurement]
) -> list[dict[str, Any]]:
    """Per scenario: medians per target, and the paired ratios of ours to the others."""
    rows = []
    for scenario in names:
        mine = [m for m in measurements if m.scenario == scenario.name]
        row: dict[str, Any] = {
            "scenario": scenario.name,
            "missing": scenario.missing,
            "note": scenario.note,
        }
        for target in TARGETS:
            runs = [m for m in mine if m.side == target]
            row[target] = te.side_summary(runs) if runs else None
        for other in (CEILING, PEER):
            row[f"rate_ours_per_{other}"] = paired(mine, other, lambda r: r.requests_per_second)
            row[f"p99_ours_per_{other}"] = paired(mine, other, lambda r: r.p99_ms)
        rows.append(row)
    return rows


def _cell(value: float | None, spec: str, suffix: str = "") -> str:
    return "n/a" if value is None else f"{value:{spec}}{suffix}"


COLUMNS = (
    "endpoint",
    *(f"{t} req/s" for t in TARGETS),
    "ours/ceiling",
    "ours/peer",
    *(f"{t} p99" for t in TARGETS),
    "p99 ours/ceiling",
    "p99 ours/peer",
)


def table(rows: Sequence[dict[str, Any]]) -> str:
    """The summary as a Markdown table ("n/a" where a target was not measured)."""
    rule = "|---|" + "---:|" * (len(COLUMNS) - 1)
    lines = ["| " + " | ".join(COLUMNS) + " |", rule]
    for row in rows:
        rates = [(row[t] or {}).get("requests_per_second") for t in TARGETS]
        p99s = [(row[t] or {}).get("p99_ms") for t in TARGETS]
        cells = [
            row["scenario"],
            *(_cell(v, ".0f") for v in rates),
            _cell(row["rate_ours_per_ceiling"], ".0%"),
            _cell(row["rate_ours_per_peer"], ".0%"),
            *(_cell(v, ".2f", " ms") for v in p99s),
            _cell(row["p99_ours_per_ceiling"], ".2f"),
            _cell(row["p99_ours_per_peer"], ".2f"),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def signing_report(
    limits: dict[str, dict[str, float]], rows: Sequence[dict[str, Any]]
) -> dict[str, Any]:
    """Our token rate per alg against the raw signing rate on one core.

    Also per CPU second our server got (its rate over its CPU share), the steadier figure
    when other work shares the core.
    """
    report = {}
    for alg, limit in limits.items():
        row = next(r for r in rows if r["scenario"] == f"token {alg}")
        ours = row[OURS] or {}
        rate = ours.get("requests_per_second", float("nan"))
        per_cpu = rate / max(ours.get("server_cpu_share", float("nan")), 1e-9)
        report[alg] = {
            **limit,
            "ours_tokens_per_second": rate,
            "ours_share_of_limit": rate / limit["per_cpu_second"],
            "ours_tokens_per_cpu_second": per_cpu,
            "ours_share_of_limit_per_cpu_second": per_cpu / limit["per_cpu_second"],
        }
    return report


def print_report(
    rows: Sequence[dict[str, Any]],
    limits: dict[str, Any],
    measurements: Sequence[Measurement],
) -> None:
    print()
    print(table(rows))
    print()
    for alg, limit in limits.items():
        print(
            f"cryptography {alg} signing on one core: {limit['per_cpu_second']:,.0f}/s per CPU "
            f"second ({limit['cpu_us_per_signature']:.0f} µs each; {limit['per_wall_second']:,.0f}"
            f"/s of wall time); our {alg} tokens: {limit['ours_tokens_per_second']:,.0f}/s = "
            f"{limit['ours_share_of_limit']:.0%} of it; per CPU second our server got: "
            f"{limit['ours_tokens_per_cpu_second']:,.0f} = "
            f"{limit['ours_share_of_limit_per_cpu_second']:.0%}"
        )
    notes: dict[str, list[str]] = {}
    for row in rows:
        for target, why in row["missing"].items():
            print(f"{row['scenario']}: {target} not measured: {why}")
        if row["note"]:
            notes.setdefault(row["note"], []).append(row["scenario"])
    for note, names in notes.items():
        print(f"{', '.join(names)}: {note}")
    te.note_disturbed(measurements)


# -- main ---------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Measure every target, print the table, write JSON; exit 1 if any run failed."""
    options = parse_args(argv)
    wrk_path = te.get_ready(peer=True)
    started = te.moment("start")
    final, measurements, signing_runs = run(options, wrk_path)
    rows = summarize(final, measurements)
    limits = signing_report(signing.summarize(signing_runs), rows)
    print_report(rows, limits, measurements)
    finished = te.moment("end")
    document = {
        "options": options.as_dict(),
        "started": started,
        "finished": finished,
        "summary": rows,
        "signing": {"limits": limits, "runs": [asdict(r) for r in signing_runs]},
    }
    return te.conclude(options.output, document, measurements)


if __name__ == "__main__":
    sys.exit(main())
