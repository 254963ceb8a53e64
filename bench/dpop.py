"""The cost of a DPoP-bound token request (RFC 9449) against a plain one, on our server.

``idp serve`` (granian, one worker) runs pinned to core 0; wrk, pinned to core 1, loads
``POST /token`` (client_credentials, client_secret_basic) for the ES256 and the RS256
client of bench/service.py in two flows each:

- **plain**: a Bearer token, as bench/grants' client_credentials;
- **dpop**: the same request with a ``DPoP`` header, a proof signed with an ES256 (P-256)
  key, answered with a DPoP-bound token (``token_type`` ``DPoP``, ``cnf.jkt``).

A proof is single use (its ``jti`` is remembered) and fresh (its ``iat`` within the server's
proof age window, 60 s by default), so wrk cannot repeat one: just before each DPoP run a
pool of proofs is made here, one per line of a file that bench/requests.lua sends one per
request (``BENCH_HEADER_LINES``). The pool is sized from the best rate seen so far (twice
it for the run, plus a margin); a proof used twice would be refused and fail the run. All
proofs of a run share one key, as one client's would. Making them costs the load generator
nothing during the run.

Every round loads both flows of each alg back to back, their order rotating round by round;
each DPoP flow is reported as the median of its per-round ratio to the plain flow.

Run it as ``bench/dpop`` (``--help`` for the options; defaults: SQLite, 3 rounds of 5 s).
"""

from __future__ import annotations

import base64
import contextlib
import json
import secrets
import sys
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from bench import checks, rounds, service, wrk
from bench import token_endpoint as te
from bench.rounds import Options, Run
from bench.servers import Server

NAME = "dpop"
SERVER_CORES = "0"
LOAD_CORES = "1"
PLAIN, DPOP = "plain", "dpop"
FLOWS = (PLAIN, DPOP)
FIRST_GUESS = 2000.0
POOL_MARGIN = 2.0
POOL_EXTRA = 500
DURATION, WARMUP = 5, 2


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _json(document: dict[str, Any]) -> str:
    return _b64(json.dumps(document, separators=(",", ":")).encode())


@dataclass(frozen=True)
class ProofKey:
    """An ES256 (P-256) DPoP key and the encoded JOSE header of its proofs."""

    private: ec.EllipticCurvePrivateKey
    header: str

    @classmethod
    def generate(cls) -> ProofKey:
        private = ec.generate_private_key(ec.SECP256R1())
        numbers = private.public_key().public_numbers()
        jwk = {
            "kty": "EC",
            "crv": "P-256",
            "x": _b64(numbers.x.to_bytes(32, "big")),
            "y": _b64(numbers.y.to_bytes(32, "big")),
        }
        return cls(private, _json({"typ": "dpop+jwt", "alg": "ES256", "jwk": jwk}))

    def proof(self, htu: str, iat: int) -> str:
        """A fresh proof for ``POST htu`` (RFC 9449 section 4.2): a new jti each time."""
        claims = {"jti": secrets.token_urlsafe(16), "htm": "POST", "htu": htu, "iat": iat}
        signing_input = f"{self.header}.{_json(claims)}"
        der = self.private.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        return f"{signing_input}.{_b64(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


@dataclass
class Proofs:
    """Makes a pool of proofs before each DPoP run, sized from the rates seen so far."""

    server: Server
    workdir: Path
    key: ProofKey
    rates: dict[str, float]
    made: list[dict[str, Any]]

    def write(self, alg: str, seconds: int) -> Path:
        """A file of ``DPoP: <proof>`` lines for a run of ``seconds``; made just now."""
        rate = self.rates.get(alg, FIRST_GUESS)
        count = int(rate * seconds * POOL_MARGIN) + POOL_EXTRA
        started = time.monotonic()
        htu, iat = f"{self.server.base_url}/token", int(time.time())
        lines = [f"DPoP: {self.key.proof(htu, iat)}" for _ in range(count)]
        path = self.workdir / f"dpop-{alg}.headers"
        path.write_text("\n".join(lines) + "\n")
        elapsed = time.monotonic() - started
        self.made.append({"alg": alg, "count": count, "seconds": round(elapsed, 3)})
        return path


def dpop_token_type(server: Server, basic: str, key: ProofKey) -> str:
    """The token_type of one DPoP token request (must be DPoP), checked before measuring."""
    url = f"{server.base_url}/token"
    request = urllib.request.Request(  # noqa: S310
        url,
        data=checks.TOKEN_BODY.encode(),
        headers={
            "Authorization": f"Basic {basic}",
            "Content-Type": "application/x-www-form-urlencoded",
            "DPoP": key.proof(url, int(time.time())),
        },
    )
    with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310
        document = json.loads(answer.read())
    token_type: str = document.get("token_type", "")
    return token_type


def run_flow(
    wrk_path: str, proofs: Proofs, basic: str, key: tuple[str, str], seconds: int, conns: int
) -> tuple[wrk.WrkResult, float, float]:
    """Load one flow of one alg for ``seconds`` (a fresh pool of proofs for DPoP)."""
    alg, flow = key
    request = wrk.Request(basic=basic)
    if flow == DPOP:
        path = proofs.write(alg, seconds)
        request = wrk.Request(basic=basic, header_lines=path, expect='"DPoP"')
    load = rounds.Load(proofs.server, "/token", request, LOAD_CORES)
    measured = rounds.measure(wrk_path, load, seconds, conns)
    if flow == DPOP and measured[0].ok:
        proofs.rates[alg] = max(proofs.rates.get(alg, 0.0), measured[0].requests_per_second)
    return measured


def bench_store(
    wrk_path: str, options: Options, store: str, made: list[dict[str, Any]]
) -> list[Run]:
    """Set the service up on ``store``, check both flows, warm up, then the rounds."""
    runs: list[Run] = []
    with (
        rounds.store_fixture(store, options.database_url) as (fixture, workdir),
        contextlib.ExitStack() as stack,
    ):
        server = rounds.serve(stack, fixture, workdir, workers=1, cores=SERVER_CORES)
        proofs = Proofs(server, workdir, ProofKey.generate(), {}, [])
        for alg in service.ALGS:
            token_type = dpop_token_type(server, fixture.clients[alg].basic_credentials, proofs.key)
            if token_type != "DPoP":
                raise RuntimeError(f"{alg}: a DPoP token request answered {token_type!r}")
        print(f"{store}: 1 worker on core {SERVER_CORES}, wrk on core {LOAD_CORES}", flush=True)
        for alg in service.ALGS:
            basic = fixture.clients[alg].basic_credentials
            for flow in FLOWS if options.warmup else ():
                run_flow(wrk_path, proofs, basic, (alg, flow), options.warmup, options.connections)
        for index in range(1, options.rounds + 1):
            for alg in service.ALGS:
                basic = fixture.clients[alg].basic_credentials
                for flow in te.rotated(FLOWS, index):
                    measured = run_flow(
                        wrk_path, proofs, basic, (alg, flow), options.duration, options.connections
                    )
                    run = Run(store, alg, flow, index, *measured)
                    rounds.print_run(run)
                    runs.append(run)
        made += [{"store": store, **m} for m in proofs.made]
    return runs


def summarize(runs: Sequence[Run]) -> list[dict[str, Any]]:
    """Per store, alg and flow: medians over rounds, and the paired ratio DPoP/plain."""
    rows = []
    for store in dict.fromkeys(r.store for r in runs):
        for alg in service.ALGS:
            mine = [r for r in runs if r.store == store and r.scenario == alg]
            for flow in FLOWS:
                row: dict[str, Any] = {"store": store, "alg": alg, "flow": flow}
                row.update(rounds.target_summary([r for r in mine if r.target == flow]))
                row["vs_plain"] = rounds.paired_ratio(
                    mine, rounds.target_is(flow), rounds.target_is(PLAIN)
                )
                rows.append(row)
    return rows


def table(rows: Sequence[dict[str, Any]]) -> str:
    """The summary as a Markdown table."""
    lines = [
        "| store | access token | flow | req/s | vs plain | p99 | server CPU |",
        "|---|---|---|---:|---:|---:|---:|",
    ]
    for row in rows:
        cells = [
            row["store"],
            row["alg"],
            row["flow"] if row["flow"] == PLAIN else "DPoP (ES256 proof)",
            rounds.cell(row["requests_per_second"], ",.0f"),
            rounds.cell(row["vs_plain"], ".0%"),
            rounds.cell(row["p99_ms"], ".2f", " ms"),
            rounds.cell(row["server_cpu"], ".0%"),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Measure, print the table, write JSON; exit 1 if any run failed."""
    made = rounds.parser("bench/dpop", "DPoP-bound token requests against plain ones.")
    args = list(sys.argv[1:] if argv is None else argv)
    # Shorter than the other benches' 10 s by default: two flows per alg, 5 s is enough.
    if "--quick" not in args:
        args += [] if "--duration" in args else ["--duration", str(DURATION)]
        args += [] if "--warmup" in args else ["--warmup", str(WARMUP)]
    options = rounds.options(made, args, NAME)
    if "--store" not in args:
        options = replace(options, stores=("sqlite",))
    wrk_path = te.get_ready(peer=False)
    started = te.moment("start")
    proofs_made: list[dict[str, Any]] = []
    runs = [r for s in options.stores for r in bench_store(wrk_path, options, s, proofs_made)]
    rows = summarize(runs)
    print()
    print(table(rows))
    rounds.note_other_work(runs)
    return rounds.finish(options, started, {"summary": rows, "proofs": proofs_made}, runs)


if __name__ == "__main__":
    sys.exit(main())
