"""The service side by side with a peer provider (oidc-provider), and optionally a baseline.

    bench/baseline [--baseline DIR] [--runs N] [--duration S] [--warmup S] [--endpoint NAME]...
               [--connections N] [--peer-run PATH]

Every side runs one process pinned to core 0, all started before measuring; wrk loads one
side at a time from core 1 with bench/requests.lua (the same requests as
bench/token_endpoint: client_credentials with client_secret_basic, JWKS, discovery, and
a JWKS revalidation whose If-None-Match matches, answered 304). Every side first gets
``--warmup`` seconds of each endpoint (the peer's JIT needs it). In each run every side is
loaded back to back for each endpoint, in an order that rotates run by run; the figures
are the medians over runs of each side's rate and of the per-run ratios ours/peer (and
ours/baseline), so that slow drift in the rest of the machine's load cancels out. The
same is reported per CPU second the server's processes used (from /proc), which moves
less when other work takes part of core 0. Last, bare ``cryptography`` signing rates on
core 0 (per CPU second) give the ceiling an RS256 token endpoint can approach.

``--baseline DIR`` serves a second copy of the service from another checkout of the code
(e.g. ``git archive main | tar -x -C DIR``) with this virtualenv, to compare before and
after a change. The peer is `bench/peer/run PORT` (``--peer-run``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from bench import servers, service, wrk

PEER_RUN = str(Path(__file__).resolve().parent / "peer" / "run")
PEER_SECRET = "peer-secret-0123456789abcdef"
ENDPOINTS = ("es256", "rs256", "jwks", "jwks304", "discovery")
SERVER_CORE = 0
LOAD_CORE = 1
PEER_START_TIMEOUT = 180.0


def _basic(client_id: str, secret: str) -> str:
    return service.Client("", client_id, secret).basic_credentials


def _peer_ready(port: int, deadline: float) -> None:
    while time.monotonic() < deadline:
        if servers._get_status(f"http://127.0.0.1:{port}/jwks") == 200:
            return
        time.sleep(0.5)
    raise RuntimeError("the peer did not answer in time")


def _etag(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as answer:  # noqa: S310 - loopback only
        return str(answer.headers["ETag"])


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", type=Path)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--endpoint", action="append", choices=ENDPOINTS)
    parser.add_argument("--peer-run", default=PEER_RUN)
    args = parser.parse_args(argv)
    endpoints = args.endpoint or list(ENDPOINTS)
    wrk_path = wrk.ensure_wrk()
    with tempfile.TemporaryDirectory(prefix="idp-peer-bench-") as folder, ExitStack() as stack:
        workdir = Path(folder)
        fixture = service.prepare(workdir, dict(os.environ))
        sides: dict[str, dict[str, Any]] = {}

        def ours(name: str, pythonpath: str | None) -> None:
            port = servers.free_port()
            env = fixture.with_issuer(f"http://127.0.0.1:{port}")
            if pythonpath:
                env["PYTHONPATH"] = pythonpath
            argv_ = servers.command("granian", "", port, service=True)
            server = stack.enter_context(
                servers.serving(name, argv_, port, env, workdir / f"{name}.log", SERVER_CORE)
            )
            clients = fixture.clients
            sides[name] = {
                "url": server.base_url,
                "pgid": server.process.pid,
                "jwks": "/jwks.json",
                "basic": {a.lower(): clients[a].basic_credentials for a in clients},
            }

        ours("ours", None)
        if args.baseline:
            ours("baseline", str(args.baseline.resolve()))
        peer_port = servers.free_port()
        peer = servers.start(
            "peer",
            [args.peer_run, str(peer_port)],
            peer_port,
            dict(os.environ),
            workdir / "peer.log",
            SERVER_CORE,
        )
        stack.callback(servers.stop, peer)
        _peer_ready(peer_port, time.monotonic() + PEER_START_TIMEOUT)
        sides["peer"] = {
            "url": peer.base_url,
            "pgid": peer.process.pid,
            "jwks": "/jwks",
            "basic": {a: _basic(f"peer-{a}", PEER_SECRET) for a in ("es256", "rs256")},
        }
        names = list(sides)
        results: dict[str, dict[str, list[float]]] = {e: {n: [] for n in names} for e in endpoints}
        results.get("jwks304", {}).pop("peer", None)
        per_cpu = {e: {n: list[float]() for n in by_side} for e, by_side in results.items()}
        warmup = argparse.Namespace(**{**vars(args), "duration": args.warmup})
        for endpoint in endpoints:
            for name in names:
                if not (endpoint == "jwks304" and name == "peer") and args.warmup > 0:
                    _load(wrk_path, sides[name], endpoint, warmup)
        for run in range(args.runs):
            order = names[run % len(names) :] + names[: run % len(names)]
            for endpoint in endpoints:
                for name in order:
                    if endpoint == "jwks304" and name == "peer":
                        continue  # the peer sends no ETag: nothing to revalidate
                    cpu = servers.process_group_cpu(sides[name]["pgid"])
                    result = _load(wrk_path, sides[name], endpoint, args)
                    cpu = servers.process_group_cpu(sides[name]["pgid"]) - cpu
                    if not result.ok:
                        print(f"{name} {endpoint}: failed run {result}", file=sys.stderr)
                        return 1
                    results[endpoint][name].append(result.requests_per_second)
                    per_cpu[endpoint][name].append(result.requests / max(cpu, 1e-9))
        print("Requests per second (wall clock):")
        _report(results, names)
        print("Requests per CPU second of the server's processes:")
        _report(per_cpu, names)
        raw = raw_signing_rates()
        print(
            f"bare cryptography on core 0, per CPU second: RS256 {raw['RS256']:.0f}/s, "
            f"ES256 {raw['ES256']:.0f}/s"
        )
        if "rs256" in results:
            share = statistics.median(per_cpu["rs256"]["ours"]) / raw["RS256"]
            print(f"ours: RS256 tokens per CPU second at {share:.0%} of bare RS256 signing")
        if "jwks" in results and "jwks304" in results:
            revalidation = _paired(results["jwks304"]["ours"], results["jwks"]["ours"])
            print(f"ours: a 304 revalidation at {revalidation:.2f}x the rate of a 200")
        print(json.dumps({"loadavg": os.getloadavg(), "results": results, "per_cpu": per_cpu}))
    return 0


def raw_signing_rates(seconds: float = 3.0) -> dict[str, float]:
    """Signatures per second of bare ``cryptography`` on core 0, where the servers run:
    RS256 (2048-bit, PKCS#1 v1.5, SHA-256) and ES256 (P-256), over a token-sized input."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {SERVER_CORE})
    try:
        data = b"x" * 400
        rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        ec_key = ec.generate_private_key(ec.SECP256R1())
        sha256 = hashes.SHA256()
        signs: dict[str, Callable[[], bytes]] = {
            "RS256": lambda: rsa_key.sign(data, padding.PKCS1v15(), sha256),
            "ES256": lambda: ec_key.sign(data, ec.ECDSA(sha256)),
        }
        rates = {}
        for alg, sign in signs.items():
            count, started = 0, time.process_time()
            while time.process_time() - started < seconds:
                sign()
                count += 1
            rates[alg] = count / (time.process_time() - started)
        return rates
    finally:
        os.sched_setaffinity(0, before)


def _load(wrk_path: str, side: dict[str, Any], endpoint: str, args: Any) -> wrk.WrkResult:
    common = {"duration": args.duration, "connections": args.connections, "threads": 1}
    url = side["url"]
    if endpoint in ("es256", "rs256"):
        token_request = wrk.Request(basic=side["basic"][endpoint])
        return wrk.run(wrk_path, f"{url}/token", core=LOAD_CORE, request=token_request, **common)
    if endpoint == "discovery":
        return wrk.run(
            wrk_path, f"{url}/.well-known/openid-configuration", core=LOAD_CORE, **common
        )
    jwks_url = url + side["jwks"]
    if endpoint == "jwks":
        return wrk.run(wrk_path, jwks_url, core=LOAD_CORE, **common)
    revalidation = wrk.Request(if_none_match=_etag(jwks_url), status=304)
    return wrk.run(wrk_path, jwks_url, core=LOAD_CORE, request=revalidation, **common)


def _paired(ours: list[float], other: list[float]) -> float:
    """The median over runs of ours/other, each pair measured back to back."""
    return statistics.median(a / b for a, b in zip(ours, other, strict=True))


def _report(results: dict[str, dict[str, list[float]]], names: list[str]) -> None:
    others = [n for n in names if n != "ours"]
    print(
        "| endpoint | "
        + " | ".join(f"{n} req/s" for n in names)
        + " | "
        + " | ".join(f"ours/{n}" for n in others)
        + " |"
    )
    print("|---" * (1 + len(names) + len(others)) + "|")
    for endpoint, by_side in results.items():
        rates = [f"{statistics.median(by_side[n]):.0f}" if by_side.get(n) else "-" for n in names]
        ratios = [
            f"{_paired(by_side['ours'], by_side[n]):.2f}x" if n in by_side else "-" for n in others
        ]
        print(f"| {endpoint} | " + " | ".join(rates) + " | " + " | ".join(ratios) + " |")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
