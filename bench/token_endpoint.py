"""Token endpoint and JWKS throughput: the service against a bare-Starlette ceiling and a peer.

A throwaway service (temp SQLite store, fresh key-encryption key, one RS256 and one ES256
confidential client, keys) runs with one worker pinned to core 0, under granian and then
under uvicorn. Next to it, on the same core and server, run bare apps (bench/bare_app.py)
that only parse the form and sign the same claims with an in-memory key, or answer fixed
JWKS bytes: the ceiling of this stack. The peer, oidc-provider on Node (bench/peer), runs
on the same core too. wrk, pinned to core 1, loads each side in turn, the order rotating
run by run; each figure is the median of ``--runs`` measured runs after a warm-up.

Run it as ``bench/token_endpoint`` (``--help`` for the options, ``--quick`` for a smoke run).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import importlib.metadata
import json
import os
import platform
import signal
import statistics
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from bench import bare_app, checks, peer_server, servers, service, wrk
from bench.servers import Server
from bench.service import Fixture

SERVER_CORE = 0
LOAD_CORE = 1
RESULTS_DIR = Path(__file__).resolve().parent / "results"
SERVICE, CEILING, PEER = "service", "ceiling", "peer"
PACKAGES = (
    "granian",
    "uvicorn",
    "uvloop",
    "httptools",
    "starlette",
    "joserfc",
    "cryptography",
    "asyncpg",
)


@dataclass(frozen=True)
class Scenario:
    """One endpoint under load, and the share of the ceiling the service should reach."""

    key: str
    name: str
    path: str
    peer_path: str
    alg: str | None
    target_ratio: float


SCENARIOS = (
    Scenario("rs256", "token RS256", "/token", peer_server.TOKEN_PATH, "RS256", 0.80),
    Scenario("es256", "token ES256", "/token", peer_server.TOKEN_PATH, "ES256", 0.80),
    Scenario("jwks", "jwks", "/jwks.json", peer_server.JWKS_PATH, None, 0.90),
)


@dataclass(frozen=True)
class Options:
    """How long and how hard to load, and which servers to try."""

    duration: int
    warmup: int
    runs: int
    connections: int
    threads: int
    servers: tuple[str, ...]
    scenarios: tuple[Scenario, ...]
    peer: bool
    output: Path | None

    @property
    def sides(self) -> tuple[str, ...]:
        return (SERVICE, CEILING, PEER) if self.peer else (SERVICE, CEILING)

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.__dict__,
            "scenarios": [s.key for s in self.scenarios],
            "output": str(self.output) if self.output else None,
        }


@dataclass
class Stack:
    """The service and the bare apps (one per alg) running under one server."""

    server: str
    service: Server
    bare: dict[str, Server] = field(default_factory=dict)
    peer: Server | None = None

    def target(self, scenario: Scenario, side: str) -> Server:
        if side == SERVICE:
            return self.service
        if side == PEER:
            if self.peer is None:
                raise RuntimeError("the peer is not running")
            return self.peer
        return self.bare[scenario.alg or service.ALGS[0]]


@dataclass(frozen=True)
class Measurement:
    """One measured wrk run against one side."""

    server: str
    scenario: str
    side: str
    run: int
    result: wrk.WrkResult
    cpu: servers.CpuUse

    def as_dict(self) -> dict[str, Any]:
        return {
            "server": self.server,
            "scenario": self.scenario,
            "side": self.side,
            "run": self.run,
            "server_cpu_share": round(self.cpu.server_share, 3),
            "core_busy_share": round(self.cpu.core_busy_share, 3),
            **self.result.as_dict(),
        }


# -- options ------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(
        prog="bench/token_endpoint",
        description="Token endpoint and JWKS throughput against a bare-Starlette ceiling "
        "and a peer (oidc-provider).",
    )
    parser.add_argument("--duration", type=int, help="seconds per measured run (default 10)")
    parser.add_argument("--warmup", type=int, help="seconds of warm-up per side (default 3)")
    parser.add_argument("--runs", type=int, help="measured runs; the median is kept (default 3)")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections (16)")
    parser.add_argument("--threads", type=int, default=1, help="wrk threads (1)")
    parser.add_argument(
        "--server",
        action="append",
        choices=servers.SERVERS,
        help="server to try (repeatable; default: granian and uvicorn)",
    )
    parser.add_argument(
        "--endpoint",
        action="append",
        choices=[s.key for s in SCENARIOS],
        help="endpoint to load (repeatable; default: all)",
    )
    parser.add_argument("--no-peer", action="store_true", help="leave the peer (oidc-provider) out")
    add_run_arguments(parser, "smoke run: 1 s warm-up, 3 s runs, 1 run")
    args = parser.parse_args(argv)
    quick = args.quick
    options = Options(
        duration=args.duration or (3 if quick else 10),
        warmup=args.warmup if args.warmup is not None else (1 if quick else 3),
        runs=args.runs or (1 if quick else 3),
        connections=args.connections,
        threads=args.threads,
        servers=tuple(dict.fromkeys(args.server or servers.SERVERS)),
        scenarios=tuple(s for s in SCENARIOS if not args.endpoint or s.key in args.endpoint),
        peer=not args.no_peer,
        output=output_path(args, "token_endpoint"),
    )
    if min(options.duration, options.runs, options.connections, options.threads) < 1:
        parser.error("--duration, --runs, --connections and --threads must be at least 1")
    return options


def add_run_arguments(parser: argparse.ArgumentParser, quick: str) -> None:
    """--quick (described by ``quick``), --output and --no-output."""
    parser.add_argument("--quick", action="store_true", help=quick)
    parser.add_argument("--output", type=Path, help="JSON results file (default bench/results/)")
    parser.add_argument("--no-output", action="store_true", help="write no JSON results file")


def output_path(args: argparse.Namespace, name: str) -> Path | None:
    """Where the results go: --output, or bench/results/<name>-<time>.json, or nowhere."""
    if args.no_output:
        return None
    path: Path = args.output or default_output(name)
    return path


def default_output(name: str) -> Path:
    """bench/results/<name>-<UTC time>.json: where a bench writes its results by default."""
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    return RESULTS_DIR / f"{name}-{stamp}.json"


# -- environment --------------------------------------------------------------------------


def check_cores() -> None:
    """The server and the load generator each need a core of their own."""
    allowed = os.sched_getaffinity(0)
    if not {SERVER_CORE, LOAD_CORE} <= allowed:
        raise RuntimeError(f"needs cores {SERVER_CORE} and {LOAD_CORE}; allowed: {allowed}")


def base_env() -> dict[str, str]:
    """This process's environment without IDP_* settings, with the repository importable."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IDP_", "BENCH_"))}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(service.ROOT), env.get("PYTHONPATH")) if p)
    return env


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    versions = {}
    for name in PACKAGES:
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            versions[name] = importlib.metadata.version(name)
    return {
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "packages": versions,
        "peer_packages": peer_server.versions(),
    }


# -- servers ------------------------------------------------------------------------------


def _start(
    stack: contextlib.ExitStack,
    workdir: Path,
    name: str,
    argv: list[str],
    port: int,
    env: dict[str, str],
    ready_path: str = "/jwks.json",
) -> Server:
    log = workdir / f"{name.replace(' ', '-')}.log"
    serving = servers.serving(name, argv, port, env, log, SERVER_CORE, ready_path)
    return stack.enter_context(serving)


def start_peer(stack: contextlib.ExitStack, workdir: Path, env: dict[str, str]) -> Server:
    """Start the peer (oidc-provider) on the server core."""
    port = servers.free_port()
    argv = peer_server.argv(port)
    return _start(stack, workdir, "peer", argv, port, env, peer_server.JWKS_PATH)


def start_stack(
    stack: contextlib.ExitStack, server: str, fixture: Fixture, workdir: Path, *, peer: bool
) -> Stack:
    """Start the service, one bare app per alg serving the service's own JWKS bytes, the peer."""
    port = servers.free_port()
    argv = servers.command(server, servers.SERVICE_FACTORY, port, service=True)
    env = fixture.with_issuer(f"http://127.0.0.1:{port}")
    running = Stack(server, _start(stack, workdir, f"{server} service", argv, port, env))
    jwks_file = workdir / "jwks.json"
    jwks_file.write_bytes(checks.fetch(running.service.base_url + "/jwks.json"))
    discovery_file = workdir / "discovery.json"
    discovery = checks.fetch(running.service.base_url + bare_app.DISCOVERY_PATH)
    discovery_file.write_bytes(discovery)
    for alg in service.ALGS:
        port = servers.free_port()
        argv = servers.command(server, servers.BARE_FACTORY, port, service=False)
        env = {
            **fixture.env,
            "BENCH_ALG": alg,
            "BENCH_ISSUER": f"http://127.0.0.1:{port}",
            "BENCH_CLIENT_ID": fixture.clients[alg].client_id,
            "BENCH_SCOPE": service.CLIENT_SCOPE,
            "BENCH_JWKS_FILE": str(jwks_file),
            "BENCH_DISCOVERY_FILE": str(discovery_file),
        }
        running.bare[alg] = _start(stack, workdir, f"{server} bare {alg}", argv, port, env)
    if peer:
        running.peer = start_peer(stack, workdir, fixture.env)
    return running


def verify(running: Stack, fixture: Fixture) -> None:
    """Both sides answer 200 with comparable tokens, and serve the same JWKS bytes."""
    jwks = checks.fetch(running.service.base_url + "/jwks.json")
    for alg, client in fixture.clients.items():
        basic = client.basic_credentials
        ours = checks.check_service_token(running.service.base_url + "/token", basic, alg, jwks)
        bare = checks.check_bare_token(running.bare[alg].base_url + "/token", basic, alg)
        if abs(len(ours) - len(bare)) > 8:
            raise RuntimeError(f"{alg}: token sizes differ: {len(ours)} vs {len(bare)} bytes")
        if checks.fetch(running.bare[alg].base_url + "/jwks.json") != jwks:
            raise RuntimeError(f"bare {alg} app serves other JWKS bytes than the service")
        if running.peer is not None:
            peer_server.check_token(running.peer, alg)


# -- measuring ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Loader:
    """Runs wrk against one side at a time, with the options and credentials of this bench."""

    wrk_path: str
    options: Options
    fixture: Fixture

    def load(
        self, target: Server, scenario: Scenario, side: str, seconds: int
    ) -> tuple[wrk.WrkResult, servers.CpuUse]:
        """Load one side for ``seconds``; return wrk's result and the server core's use."""
        alg = scenario.alg
        request = wrk.Request()
        if alg and side == PEER:
            basic = peer_server.basic(peer_server.CLIENTS[alg])
            request = wrk.Request(basic=basic, body=peer_server.TOKEN_BODY)
        elif alg:
            request = wrk.Request(basic=self.fixture.clients[alg].basic_credentials)
        path = scenario.peer_path if side == PEER else scenario.path
        return measure_side(
            self.wrk_path,
            target.base_url + path,
            target,
            request,
            seconds=seconds,
            connections=self.options.connections,
            threads=self.options.threads,
        )


def measure_side(
    wrk_path: str,
    url: str,
    target: Server,
    request: wrk.Request,
    *,
    seconds: int,
    connections: int,
    threads: int,
) -> tuple[wrk.WrkResult, servers.CpuUse]:
    """Load ``url`` of ``target`` (on the server core) from the load core for ``seconds``.

    Returns wrk's result and how busy the server core was, and with what.
    """
    meter = servers.CpuMeter(target, SERVER_CORE)
    result = wrk.run(
        wrk_path,
        url,
        duration=seconds,
        connections=connections,
        threads=threads,
        core=LOAD_CORE,
        request=request,
    )
    return result, meter.stop()


T = TypeVar("T")


def rotated(sides: Sequence[T], run: int) -> tuple[T, ...]:
    """The order of the sides in run ``run`` (from 1): each run starts one side later."""
    shift = (run - 1) % len(sides)
    return (*sides[shift:], *sides[:shift])


def bench_server(server: str, loader: Loader, workdir: Path) -> list[Measurement]:
    """Warm up, then load every side back to back for every scenario, run after run.

    The order of the sides rotates run by run (service first, then ceiling first, ...).
    """
    options = loader.options
    measurements: list[Measurement] = []
    with contextlib.ExitStack() as stack:
        running = start_stack(stack, server, loader.fixture, workdir, peer=options.peer)
        verify(running, loader.fixture)
        if options.warmup:
            for scenario in options.scenarios:
                for side in options.sides:
                    target = running.target(scenario, side)
                    loader.load(target, scenario, side, options.warmup)
        for run in range(1, options.runs + 1):
            for scenario in options.scenarios:
                for side in rotated(options.sides, run):
                    target = running.target(scenario, side)
                    result, cpu = loader.load(target, scenario, side, options.duration)
                    measurement = Measurement(server, scenario.name, side, run, result, cpu)
                    print_measurement(measurement)
                    measurements.append(measurement)
    return measurements


# -- reporting ----------------------------------------------------------------------------


def median(values: Sequence[float]) -> float:
    """The median, or NaN when there is nothing to take it of."""
    return statistics.median(values) if values else float("nan")


def side_summary(runs: Sequence[Measurement]) -> dict[str, Any]:
    """Medians over the good runs of one side; how many runs there were and failed."""
    good = [m for m in runs if m.result.ok]
    return {
        "requests_per_second": median([m.result.requests_per_second for m in good]),
        "p99_ms": median([m.result.p99_ms for m in good]),
        "server_cpu_share": median([m.cpu.server_share for m in good]),
        "core_busy_share": median([m.cpu.core_busy_share for m in good]),
        "runs": len(runs),
        "failed_runs": len(runs) - len(good),
    }


def paired_ratio(
    measurements: Sequence[Measurement], scenario: Scenario, other: str = CEILING
) -> float:
    """Median over runs of service/``other``, each pair measured in the same run.

    Pairing cancels slow drift in what else the machine is doing; the median drops a run
    that other work disturbed.
    """
    rates: dict[tuple[int, str], float] = {
        (m.run, m.side): m.result.requests_per_second
        for m in measurements
        if m.scenario == scenario.name and m.result.ok
    }
    runs = sorted({run for run, _ in rates})
    return median(
        [
            rates[(run, SERVICE)] / rates[(run, other)]
            for run in runs
            if (run, SERVICE) in rates and (run, other) in rates
        ]
    )


def summarize(measurements: Sequence[Measurement]) -> list[dict[str, Any]]:
    """Per server and scenario: medians of the good runs for each side, the paired ratios."""
    rows = []
    measured = {m.scenario for m in measurements}
    for server in dict.fromkeys(m.server for m in measurements):
        mine = [m for m in measurements if m.server == server]
        for scenario in (s for s in SCENARIOS if s.name in measured):
            row: dict[str, Any] = {"server": server, "scenario": scenario.name}
            for side in dict.fromkeys(m.side for m in mine):
                key = (server, scenario.name, side)
                row[side] = side_summary(
                    [m for m in measurements if (m.server, m.scenario, m.side) == key]
                )
            ratio = paired_ratio(mine, scenario)
            if PEER in row:
                row["peer_ratio"] = paired_ratio(mine, scenario, PEER)
            row.update(
                ratio=ratio,
                target_ratio=scenario.target_ratio,
                meets_target=ratio >= scenario.target_ratio,
            )
            rows.append(row)
    return rows


def disturbed(measurements: Sequence[Measurement], limit: float = 0.10) -> list[Measurement]:
    """Runs during which other work took more than ``limit`` of the server core."""
    return [m for m in measurements if m.cpu.core_busy_share - m.cpu.server_share > limit]


def print_measurement(m: Measurement) -> None:
    r = m.result
    print(
        f"  {m.server:<8} run {m.run}  {m.scenario:<19} {m.side:<8} {r.requests_per_second:9.1f}/s"
        f"  p99 {r.p99_ms:7.2f} ms  server CPU {m.cpu.server_share:4.0%}"
        f" (core {m.cpu.core_busy_share:4.0%})"
        f"  wrk CPU {r.load_cpu_share:4.0%}  {r.status}",
        flush=True,
    )


def table(rows: Sequence[dict[str, Any]]) -> str:
    """The summary as a Markdown table (the peer's columns only when it was measured)."""
    peer = any(PEER in row for row in rows)
    columns = ["server", "endpoint", "service req/s", "ceiling req/s", "paired ratio", "target"]
    columns += ["peer req/s", "service/peer"] if peer else []
    columns += ["service p99", "ceiling p99"] + (["peer p99"] if peer else [])
    aligns = ["---" if c in ("server", "endpoint", "target") else "---:" for c in columns]
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join(aligns) + "|"]
    for row in rows:
        ours, bare = row[SERVICE], row[CEILING]
        verdict = "met" if row["meets_target"] else "MISSED"
        cells = [
            row["server"],
            row["scenario"],
            f"{ours['requests_per_second']:.0f}",
            f"{bare['requests_per_second']:.0f}",
            f"{row['ratio']:.0%}",
            f">= {row['target_ratio']:.0%} {verdict}",
        ]
        if peer:
            cells += [f"{row[PEER]['requests_per_second']:.0f}", f"{row['peer_ratio']:.0%}"]
        cells += [f"{ours['p99_ms']:.2f} ms", f"{bare['p99_ms']:.2f} ms"]
        cells += [f"{row[PEER]['p99_ms']:.2f} ms"] if peer else []
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def winners(rows: Sequence[dict[str, Any]]) -> list[str]:
    """For each endpoint, which server serves the service faster and with the lower p99."""
    lines = []
    for scenario in SCENARIOS:
        found = {r["server"]: r[SERVICE] for r in rows if r["scenario"] == scenario.name}
        if len(found) < 2:
            continue
        by_rate = max(found, key=lambda s: found[s]["requests_per_second"])
        by_p99 = min(found, key=lambda s: found[s]["p99_ms"])
        rates = ", ".join(f"{s} {v['requests_per_second']:.0f}/s" for s, v in found.items())
        p99s = ", ".join(f"{s} {v['p99_ms']:.2f} ms" for s, v in found.items())
        lines.append(f"{scenario.name}: throughput {rates} -> {by_rate}; p99 {p99s} -> {by_p99}")
    return lines


def write_results(path: Path, document: dict[str, Any]) -> None:
    """Write ``document`` as indented JSON to ``path``, creating its directory."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2) + "\n")


# -- main ---------------------------------------------------------------------------------


def moment(label: str) -> dict[str, Any]:
    """The time and the load average now; prints the load average "at ``label``"."""
    now = {"time": datetime.datetime.now(datetime.UTC).isoformat(), "loadavg": os.getloadavg()}
    print(f"load average at {label}: {now['loadavg']}", flush=True)
    return now


def measure_all(options: Options, wrk_path: str) -> list[Measurement]:
    """Set up the throwaway service once, then bench it under every server in turn."""
    measurements: list[Measurement] = []
    with tempfile.TemporaryDirectory(prefix="idp-bench-") as tmp:
        workdir = Path(tmp)
        loader = Loader(wrk_path, options, service.prepare(workdir, base_env()))
        for server in options.servers:
            sides = " and ".join(options.sides)
            print(f"{server}: {sides} on core {SERVER_CORE}, wrk on core {LOAD_CORE}", flush=True)
            measurements += bench_server(server, loader, workdir)
    return measurements


def report(rows: Sequence[dict[str, Any]], measurements: Sequence[Measurement]) -> None:
    """Print the table, the winners, and a note when other work disturbed the runs."""
    print()
    print(table(rows))
    print()
    print("\n".join(winners(rows)))
    note_disturbed(measurements)


def note_disturbed(measurements: Sequence[Measurement]) -> None:
    """Say so when other work took more than 10% of the server core during some runs."""
    noisy = disturbed(measurements)
    if noisy:
        print(
            f"note: in {len(noisy)} of {len(measurements)} runs other work used more than 10% "
            f"of core {SERVER_CORE}; those figures are noisy"
        )


def get_ready(*, peer: bool) -> str:
    """Stop cleanly on SIGTERM, check the cores, get wrk (and the peer); wrk's path."""
    # Servers run in sessions of their own; SIGTERM must unwind so that they are stopped.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    check_cores()
    wrk_path = wrk.ensure_wrk()
    if peer:
        peer_server.install()
    return wrk_path


def conclude(
    output: Path | None, document: dict[str, Any], measurements: Sequence[Measurement]
) -> int:
    """Write the results (with the machine and every run) to ``output`` when set.

    Returns the exit status: 1 if any run failed, else 0.
    """
    if output:
        runs = [m.as_dict() for m in measurements]
        write_results(output, {"machine": machine(), **document, "measurements": runs})
        print(f"results: {output}")
    failed = [m for m in measurements if not m.result.ok]
    if failed:
        print(f"{len(failed)} run(s) failed (unexpected answers or socket errors)", file=sys.stderr)
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Set up, measure every server, print the table; exit 1 if any run saw a non-200."""
    options = parse_args(argv)
    wrk_path = get_ready(peer=options.peer)
    started = moment("start")
    measurements = measure_all(options, wrk_path)
    rows = summarize(measurements)
    report(rows, measurements)
    finished = moment("end")
    document = {
        "options": options.as_dict(),
        "started": started,
        "finished": finished,
        "summary": rows,
    }
    return conclude(options.output, document, measurements)


if __name__ == "__main__":
    sys.exit(main())
