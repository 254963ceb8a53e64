"""What bench/scaling and bench/grants share: options, stores, wrk runs, medians of rounds.

Both run our service (``idp serve``, granian) on each chosen store in turn (SQLite in a
temp directory, or a fresh PostgreSQL database made for the run and dropped after it),
load it with wrk in rounds whose order rotates, and report medians over the rounds and
medians of per-round ratios (each pair measured in the same round, so slow drift in what
else the machine is doing cancels out).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import servers, service, wrk
from bench import token_endpoint as te
from bench.servers import Server
from bench.service import Fixture

STORES = ("sqlite", "postgresql")
DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
CONNECTIONS = 16
CORES = (0, 1)
FULL = (10, 3)
"""Seconds per measured run and of warm-up per target."""
QUICK = (2, 1)


@dataclass(frozen=True)
class Options:
    """How long to load each target, how often, and on which stores."""

    rounds: int
    duration: int
    warmup: int
    stores: tuple[str, ...]
    database_url: str
    connections: int
    output: Path | None

    def as_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "output": str(self.output) if self.output else None}


def parser(prog: str, description: str) -> argparse.ArgumentParser:
    """The options every rounds bench takes (see ``options``)."""
    made = argparse.ArgumentParser(prog=prog, description=description)
    made.add_argument("--rounds", type=int, help="interleaved rounds, at least 3 (default 3)")
    made.add_argument("--duration", type=int, help="seconds per target and round (10)")
    made.add_argument("--warmup", type=int, help="seconds of warm-up per target (3)")
    made.add_argument(
        "--store",
        action="append",
        choices=STORES,
        help="store to measure on (repeatable; default: sqlite, then postgresql)",
    )
    made.add_argument(
        "--database-url",
        default=None,
        help="PostgreSQL server where the postgresql store gets a fresh database, dropped "
        "after the run (default: $IDP_TEST_DATABASE_URL or " + DEFAULT_ADMIN_URL + ")",
    )
    made.add_argument("--connections", type=int, default=CONNECTIONS, help="wrk connections (16)")
    te.add_run_arguments(made, "smoke run: 3 rounds of 2 s, 1 s warm-up")
    return made


def options(made: argparse.ArgumentParser, argv: Sequence[str] | None, name: str) -> Options:
    """Parse ``argv``; results go to bench/results/<name>-<time>.json by default."""
    args = made.parse_args(argv)
    duration, warmup = QUICK if args.quick else FULL
    admin_url = os.environ.get("IDP_TEST_DATABASE_URL", DEFAULT_ADMIN_URL)
    chosen = Options(
        rounds=args.rounds or 3,
        duration=args.duration or duration,
        warmup=warmup if args.warmup is None else args.warmup,
        stores=tuple(dict.fromkeys(args.store or STORES)),
        database_url=args.database_url or admin_url,
        connections=args.connections,
        output=te.output_path(args, name),
    )
    if chosen.rounds < 3 or min(chosen.duration, chosen.connections) < 1:
        made.error("--rounds must be at least 3, --duration and --connections at least 1")
    return chosen


@contextlib.contextmanager
def store_fixture(store: str, admin_url: str) -> Iterator[tuple[Fixture, Path]]:
    """A throwaway service set up on ``store`` (bench/service.py), and its temp directory."""
    with contextlib.ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="idp-rounds-")))
        database_url = None
        if store == "postgresql":
            database_url = stack.enter_context(service.postgres_database(admin_url))
        yield service.prepare(workdir, te.base_env(), database_url), workdir


def serve(
    stack: contextlib.ExitStack,
    fixture: Fixture,
    workdir: Path,
    *,
    workers: int,
    cores: str,
) -> Server:
    """Start ``idp serve --workers N`` pinned to ``cores``; stopped when ``stack`` closes."""
    port = servers.free_port()
    argv = [str(service.IDP), "serve", "--port", str(port), "--workers", str(workers)]
    env = fixture.with_issuer(f"http://127.0.0.1:{port}")
    log = workdir / f"idp-{workers}w-{port}.log"
    return stack.enter_context(servers.serving(f"idp {workers}w", argv, port, env, log, cores))


# -- measuring ----------------------------------------------------------------------------


def busy_ticks() -> tuple[int, int]:
    """Busy clock ticks of both cores, and the ticks of one core, so far."""
    busy, total = 0, 0
    for core in CORES:
        core_busy, core_total = servers.core_jiffies(core)
        busy, total = busy + core_busy, total + core_total
    return busy, total // len(CORES)


@dataclass(frozen=True)
class Run:
    """One wrk run against one target: where, what, and how busy both cores were."""

    store: str
    scenario: str
    target: str
    round: int
    result: wrk.WrkResult
    server_cpu: float
    """CPU seconds per second of the server's processes (2.0 = both cores)."""
    cores_busy: float
    """Busy cores over the run, all processes (2.0 = both cores fully busy)."""

    @property
    def other_cpu(self) -> float:
        """Cores taken by neither the server nor wrk: PostgreSQL's server (when it is the
        store) and the rest of the machine's work."""
        return max(0.0, self.cores_busy - self.server_cpu - self.result.load_cpu_share)

    def as_dict(self) -> dict[str, Any]:
        where = {key: getattr(self, key) for key in ("store", "scenario", "target", "round")}
        cpu = {key: round(getattr(self, key), 3) for key in ("server_cpu", "cores_busy")}
        return {**where, **cpu, "other_cpu": round(self.other_cpu, 3), **self.result.as_dict()}


@dataclass(frozen=True)
class Load:
    """One wrk load: the server, the URL path, the request, and wrk's cores."""

    server: Server
    path: str
    request: wrk.Request
    load_cores: str


def measure(
    wrk_path: str, load: Load, seconds: int, connections: int
) -> tuple[wrk.WrkResult, float, float]:
    """Run wrk once; its result, the server's CPU (in cores) and both cores' busy share."""
    cpu_before, started = load.server.cpu_seconds(), time.monotonic()
    busy_before, total_before = busy_ticks()
    result = wrk.run(
        wrk_path,
        load.server.base_url + load.path,
        duration=seconds,
        connections=connections,
        threads=1,
        core=load.load_cores,
        request=load.request,
    )
    elapsed = max(time.monotonic() - started, 1e-9)
    busy, total = busy_ticks()
    server_cpu = (load.server.cpu_seconds() - cpu_before) / elapsed
    return result, server_cpu, (busy - busy_before) / max(total - total_before, 1)


def print_run(run: Run) -> None:
    """One progress line per run; CPU in cores."""
    r = run.result
    parts = [
        f"  {run.store:<10} round {run.round}  {run.scenario:<11} {run.target:<18}",
        f"{r.requests_per_second:8.1f}/s  p99 {r.p99_ms:7.2f} ms",
        f"server CPU {run.server_cpu:4.2f}  wrk CPU {r.load_cpu_share:4.2f}",
        f"other {run.other_cpu:4.2f}  {r.status}",
    ]
    print("  ".join(parts), flush=True)


# -- reporting ----------------------------------------------------------------------------


def median(values: Sequence[float]) -> float | None:
    """The median, or None when there is nothing to take it of."""
    return statistics.median(values) if values else None


def good(runs: Sequence[Run], match: Callable[[Run], bool]) -> list[Run]:
    """The runs that ``match`` and had no failed request."""
    return [r for r in runs if match(r) and r.result.ok]


def target_summary(runs: Sequence[Run]) -> dict[str, Any]:
    """Medians over the good runs of one target; how many runs there were and failed."""
    ok = [r for r in runs if r.result.ok]
    return {
        "requests_per_second": median([r.result.requests_per_second for r in ok]),
        "p99_ms": median([r.result.p99_ms for r in ok]),
        "server_cpu": median([r.server_cpu for r in ok]),
        "wrk_cpu": median([r.result.load_cpu_share for r in ok]),
        "other_cpu": median([r.other_cpu for r in ok]),
        "runs": len(runs),
        "failed_runs": len(runs) - len(ok),
    }


def target_is(target: str) -> Callable[[Run], bool]:
    """A match for the runs against ``target``."""
    return lambda run: run.target == target


def paired_ratio(
    runs: Sequence[Run], top: Callable[[Run], bool], bottom: Callable[[Run], bool]
) -> float | None:
    """Median over rounds of rate(``top``)/rate(``bottom``), both from the same round."""
    tops = {r.round: r.result.requests_per_second for r in good(runs, top)}
    bottoms = {r.round: r.result.requests_per_second for r in good(runs, bottom)}
    return median([tops[n] / bottoms[n] for n in sorted(tops) if bottoms.get(n)])


def cell(value: float | None, spec: str, suffix: str = "") -> str:
    """A table cell: ``value`` formatted, or n/a."""
    return "n/a" if value is None else f"{value:{spec}}{suffix}"


def note_other_work(runs: Sequence[Run], limit: float = 0.10) -> None:
    """Say so when other work took more than ``limit`` of a core during some SQLite runs.

    On PostgreSQL, its server's own work is part of "other" and of every request, so only
    the SQLite runs tell how busy the machine was with work of its own.
    """
    sqlite = [r for r in runs if r.store == "sqlite"]
    noisy = [r for r in sqlite if r.other_cpu > limit]
    if noisy:
        print(
            f"note: in {len(noisy)} of {len(sqlite)} SQLite runs other work took more than "
            f"{limit:.0%} of a core; the figures are noisy"
        )


def finish(
    options: Options, started: dict[str, Any], document: dict[str, Any], runs: Sequence[Run]
) -> int:
    """Print the end's load average, write the results (machine, options, start and end,
    ``document``, every run) when asked; the exit status: 1 if any run failed."""
    finished = te.moment("end")
    output = options.output
    document = {"options": options.as_dict(), "started": started, "finished": finished, **document}
    if output:
        every = [r.as_dict() for r in runs]
        te.write_results(output, {"machine": te.machine(), **document, "runs": every})
        print(f"results: {output}")
    failed = [r for r in runs if not r.result.ok]
    if failed:
        print(f"{len(failed)} run(s) failed (unexpected answers or socket errors)", flush=True)
        return 1
    return 0
