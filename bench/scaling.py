"""Worker scaling of the token endpoint: ``idp serve --workers 1`` against ``--workers 2``.

The token endpoint (client_credentials, client_secret_basic, ES256 and RS256 clients) is
loaded on three layouts of our service and wrk over the machine's two cores:

- **1 worker**: ``idp serve --workers 1`` pinned to core 0, wrk pinned to core 1;
- **2 workers, shared**: ``--workers 2`` on cores 0-1, wrk free on cores 0-1 too: with two
  workers on two cores there is no core left for the load generator, so it takes its
  share from the server's cores (the layout of a real two-core host serving local load);
- **2 workers, wrk on core 1**: ``--workers 2`` on cores 0-1, wrk pinned to core 1: wrk's
  share is bounded by what the scheduler gives it on core 1 next to a worker.

Both two-worker layouts run the same server. Each store (SQLite, PostgreSQL) gets its own
throwaway service; every round loads, alg after alg, the three layouts back to back in an
order that rotates round by round. Reported: median requests/s and p99 per layout, and the
ratio 2 workers / 1 worker as the median of the per-round ratios.

Run it as ``bench/scaling`` (``--help`` for the options, ``--quick`` for a smoke run).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import checks, rounds, service, wrk
from bench import token_endpoint as te
from bench.rounds import Options, Run
from bench.servers import Server
from bench.service import Fixture

NAME = "scaling"


@dataclass(frozen=True)
class Layout:
    """How many workers, on which cores, and where wrk runs."""

    key: str
    label: str
    workers: int
    server_cores: str
    load_cores: str


ONE = Layout("1w", "1 worker on core 0, wrk on core 1", 1, "0", "1")
SHARED = Layout("2w-shared", "2 workers on cores 0-1, wrk shares cores 0-1", 2, "0-1", "0-1")
WRK_CORE1 = Layout("2w-wrk-core1", "2 workers on cores 0-1, wrk on core 1", 2, "0-1", "1")
LAYOUTS = (ONE, SHARED, WRK_CORE1)
SHARING_NOTE = (
    "With 2 workers on 2 cores wrk has no core of its own: in 2w-shared it runs on both "
    "cores and takes its share from the workers; in 2w-wrk-core1 it is pinned to core 1, "
    "next to one of the workers. The 1-worker layout gives wrk a whole core. wrk's CPU "
    "share is in the results."
)


def scenario_name(alg: str) -> str:
    return f"token {alg}"


def start_servers(
    stack: contextlib.ExitStack, fixture: Fixture, workdir: Path
) -> dict[int, Server]:
    """One server per worker count, both on the store of ``fixture``; checked before use."""
    running = {}
    for workers, cores in ((1, ONE.server_cores), (2, SHARED.server_cores)):
        server = rounds.serve(stack, fixture, workdir, workers=workers, cores=cores)
        jwks = checks.fetch(server.base_url + "/jwks.json")
        for alg, client in fixture.clients.items():
            url = server.base_url + "/token"
            checks.check_service_token(url, client.basic_credentials, alg, jwks)
        running[workers] = server
    return running


def bench_store(wrk_path: str, options: Options, store: str) -> list[Run]:
    """Set the service up on ``store``, warm up, then the rounds."""
    runs: list[Run] = []
    with (
        rounds.store_fixture(store, options.database_url) as (fixture, workdir),
        contextlib.ExitStack() as stack,
    ):
        running = start_servers(stack, fixture, workdir)

        def load(layout: Layout, alg: str) -> rounds.Load:
            request = wrk.Request(basic=fixture.clients[alg].basic_credentials)
            return rounds.Load(running[layout.workers], "/token", request, layout.load_cores)

        print(f"{store}: {'; '.join(layout.label for layout in LAYOUTS)}", flush=True)
        if options.warmup:
            for alg in service.ALGS:
                for layout in LAYOUTS:
                    rounds.measure(wrk_path, load(layout, alg), options.warmup, options.connections)
        for index in range(1, options.rounds + 1):
            for alg in service.ALGS:
                for layout in te.rotated(LAYOUTS, index):
                    measured = rounds.measure(
                        wrk_path, load(layout, alg), options.duration, options.connections
                    )
                    run = Run(store, scenario_name(alg), layout.key, index, *measured)
                    rounds.print_run(run)
                    runs.append(run)
    return runs


# -- reporting ----------------------------------------------------------------------------


def summarize(runs: Sequence[Run]) -> list[dict[str, Any]]:
    """Per store and alg: each layout's medians, and each 2-worker layout over 1 worker."""
    rows = []
    for store in dict.fromkeys(r.store for r in runs):
        for alg in service.ALGS:
            name = scenario_name(alg)
            mine = [r for r in runs if r.store == store and r.scenario == name]
            row: dict[str, Any] = {"store": store, "scenario": name}
            for layout in LAYOUTS:
                row[layout.key] = rounds.target_summary([r for r in mine if r.target == layout.key])
            for layout in (SHARED, WRK_CORE1):
                row[f"{layout.key}/1w"] = rounds.paired_ratio(
                    mine, rounds.target_is(layout.key), rounds.target_is(ONE.key)
                )
            rows.append(row)
    return rows


def table(rows: Sequence[dict[str, Any]]) -> str:
    """The summary as a Markdown table."""
    columns = ["store", "endpoint"]
    for layout in LAYOUTS:
        columns += [f"{layout.key} req/s", f"{layout.key} p99"]
    columns += ["2w-shared/1w", "2w-wrk-core1/1w"]
    aligns = ["---", "---"] + ["---:"] * (len(columns) - 2)
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join(aligns) + "|"]
    for row in rows:
        cells = [row["store"], row["scenario"]]
        for layout in LAYOUTS:
            summary = row[layout.key]
            cells += [
                rounds.cell(summary["requests_per_second"], ",.0f"),
                rounds.cell(summary["p99_ms"], ".2f", " ms"),
            ]
        cells += [
            rounds.cell(row["2w-shared/1w"], ".2f", "x"),
            rounds.cell(row["2w-wrk-core1/1w"], ".2f", "x"),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def cpu_table(rows: Sequence[dict[str, Any]]) -> str:
    """Where the CPU went, per layout: the server's, wrk's and other work's, in cores."""
    lines = [
        "| store | endpoint | layout | server CPU | wrk CPU | other (PostgreSQL's included) |",
        "|---|---|---|---:|---:|---:|",
    ]
    for row in rows:
        for layout in LAYOUTS:
            summary = row[layout.key]
            cells = [row["store"], row["scenario"], layout.key]
            cells += [
                rounds.cell(summary[k], ".2f") for k in ("server_cpu", "wrk_cpu", "other_cpu")
            ]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Measure every store, print the tables, write JSON; exit 1 if any run failed."""
    made = rounds.parser(
        "bench/scaling", "Token endpoint throughput with 1 worker on one core vs 2 on two."
    )
    options = rounds.options(made, argv, NAME)
    wrk_path = te.get_ready(peer=False)
    started = te.moment("start")
    print(SHARING_NOTE, flush=True)
    runs = [run for store in options.stores for run in bench_store(wrk_path, options, store)]
    rows = summarize(runs)
    print()
    print(table(rows))
    print()
    print("CPU in cores (2.00 = both cores), medians over rounds:")
    print(cpu_table(rows))
    print()
    print(SHARING_NOTE)
    rounds.note_other_work(runs)
    layouts = [layout.__dict__ for layout in LAYOUTS]
    document = {"layouts": layouts, "note": SHARING_NOTE, "summary": rows}
    return rounds.finish(options, started, document, runs)


if __name__ == "__main__":
    sys.exit(main())
