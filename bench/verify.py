"""Access-token verifications per second on one core: idp.verify next to bare verification.

A throwaway service (bench/service.py: temp SQLite store, one RS256 and one ES256 client)
runs under ``idp serve`` pinned to core 1 and issues one token per algorithm. This process,
pinned to core 0 by bench/verify, then verifies each token in a tight loop three ways:

- ours: ``TokenVerifier.verify`` (keys fetched once through discovery, then cached);
- joserfc: ``jwt.decode`` with an already-imported KeySet, plus ``JWTClaimsRegistry``
  checks of iss, aud, exp and iat;
- cryptography: split the token, base64url-decode the signature (and, for ES256, turn it
  into DER) and verify it with the public key object: the signature alone, no claims.

Each run measures every side for ``--duration`` CPU seconds, in an order that rotates run
by run; a rate is calls per CPU second of this process (so other load on the machine slows
a run down without changing its figure much); the figures are medians over ``--runs``
runs, the ratios medians of per-run ratios.

Then introspection requests per second (bench/introspection.py): wrk on core 0 POSTs
``/introspect`` to the IdP on core 1, for a fresh RS256 and a fresh ES256 access token,
``--introspection-seconds`` per run, ``--runs`` runs each; medians are reported.
Run it as ``bench/verify`` (``--help`` for the options, ``--quick`` for a smoke run).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from joserfc import jwt
from joserfc.jwk import KeySet

from bench import checks, introspection, servers, service, wrk
from bench.token_endpoint import base_env, default_output, machine, write_results
from idp.verify import InvalidToken, TokenVerifier, compact

IDP_CORE = 1
LOAD_CORE = 0
SIDES = ("ours", "joserfc", "cryptography")
BATCH = 200


@dataclass(frozen=True)
class Options:
    """How long to measure and where to write the results."""

    duration: float
    runs: int
    output: Path | None
    introspection_seconds: float


def parse_args(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(prog="bench/verify", description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=3.0, help="CPU seconds per side per run")
    parser.add_argument("--runs", type=int, default=5, help="measured runs per algorithm")
    parser.add_argument("--quick", action="store_true", help="1 s, 3 runs: a smoke test")
    parser.add_argument("--output", type=Path, help="JSON results file")
    parser.add_argument(
        "--introspection-seconds",
        type=float,
        default=5.0,
        help="wall seconds per introspection run (0: skip introspection)",
    )
    parser.add_argument("--no-output", action="store_true", help="write no JSON file")
    args = parser.parse_args(argv)
    if args.quick:
        args.duration, args.runs = 1.0, 3
        args.introspection_seconds = min(args.introspection_seconds, 2.0)
    output = None if args.no_output else args.output or default_output("verify")
    return Options(
        duration=args.duration,
        runs=args.runs,
        output=output,
        introspection_seconds=args.introspection_seconds,
    )


def _b64decode(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def cryptography_side(token: str, jwks: dict[str, Any]) -> Callable[[], None]:
    """Signature-only verification with the public key object, as cheap as it gets."""
    header = json.loads(_b64decode(token.split(".", 1)[0]))
    keys = KeySet.import_key_set(jwks)  # type: ignore[arg-type]  # a JWK Set document
    public = keys.get_by_kid(header["kid"]).public_key
    if isinstance(public, rsa.RSAPublicKey):
        rsa_key, pkcs1, sha256 = public, padding.PKCS1v15(), hashes.SHA256()

        def verify_rsa() -> None:
            signing_input, _, signature = token.rpartition(".")
            rsa_key.verify(_b64decode(signature), signing_input.encode(), pkcs1, sha256)

        return verify_rsa
    if isinstance(public, ec.EllipticCurvePublicKey):
        ec_key, ecdsa = public, ec.ECDSA(hashes.SHA256())

        def verify_ec() -> None:
            signing_input, _, signature = token.rpartition(".")
            raw = _b64decode(signature)
            der = encode_dss_signature(
                int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big")
            )
            ec_key.verify(der, signing_input.encode(), ecdsa)

        return verify_ec
    raise RuntimeError(f"unexpected key type {type(public).__name__}")


def joserfc_side(token: str, jwks: dict[str, Any], issuer: str, alg: str) -> Callable[[], None]:
    """jwt.decode with an imported KeySet, then the registered-claims checks."""
    keys = KeySet.import_key_set(jwks)  # type: ignore[arg-type]  # a JWK Set document
    claims = jwt.JWTClaimsRegistry(
        leeway=30,
        iss={"essential": True, "value": issuer},
        aud={"essential": True, "value": issuer},
        exp={"essential": True},
        iat={"essential": True},
    )

    def verify() -> None:
        claims.validate(jwt.decode(token, keys, algorithms=[alg]).claims)

    return verify


def ours_side(token: str, verifier: TokenVerifier) -> Callable[[], None]:
    def verify() -> None:
        verifier.verify(token)

    return verify


def rate(work: Callable[[], object], duration: float) -> float:
    """Calls per CPU second of ``work`` over about ``duration`` CPU seconds of this process.

    CPU time, not wall time: other work on the machine delays a run but does not change
    what one verification costs the core it runs on.
    """
    calls = 0
    started = time.process_time()
    deadline = started + duration
    while True:
        for _ in range(BATCH):
            work()
        calls += BATCH
        now = time.process_time()
        if now >= deadline:
            return calls / (now - started)


@dataclass(frozen=True)
class Run:
    """One run of one algorithm: calls per second of each side."""

    alg: str
    index: int
    rates: dict[str, float]


def measure(alg: str, sides: dict[str, Callable[[], None]], options: Options) -> list[Run]:
    for work in sides.values():
        rate(work, min(options.duration, 1.0))  # warm-up
    runs = []
    for index in range(options.runs):
        order = SIDES[index % 3 :] + SIDES[: index % 3]
        rates = {side: rate(sides[side], options.duration) for side in order}
        runs.append(Run(alg, index, rates))
        shown = ", ".join(f"{side} {rates[side]:,.0f}/s" for side in SIDES)
        print(f"{alg} run {index + 1}: {shown}", flush=True)
    return runs


def summarize(alg: str, runs: Sequence[Run]) -> dict[str, Any]:
    median = statistics.median
    return {
        "alg": alg,
        **{side: median(r.rates[side] for r in runs) for side in SIDES},
        "ours_over_joserfc": median(r.rates["ours"] / r.rates["joserfc"] for r in runs),
        "ours_over_cryptography": median(r.rates["ours"] / r.rates["cryptography"] for r in runs),
    }


def table(rows: Sequence[dict[str, Any]]) -> str:
    lines = [
        "| alg | ours /s | bare joserfc /s | bare cryptography /s "
        "| ours/joserfc | ours/cryptography |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row['alg']} | {row['ours']:,.0f} | {row['joserfc']:,.0f} | "
            f"{row['cryptography']:,.0f} | {row['ours_over_joserfc']:.0%} | "
            f"{row['ours_over_cryptography']:.0%} |"
        )
    return "\n".join(lines)


def stage_costs(token: str, verifier: TokenVerifier, duration: float) -> dict[str, float]:
    """CPU microseconds of each stage of ``TokenVerifier.verify`` on its own, for the report."""
    parts = compact.split_compact(token, verifier.max_token_bytes)
    header = compact.check_header(
        compact.json_object(parts.encoded_header, "header"), verifier.algorithms
    )
    key = verifier._cache.key(header.kid, time.time())
    claims = compact.json_object(parts.encoded_payload, "payload")

    def check_claims() -> None:
        compact.check_claims(
            claims,
            header,
            issuer=verifier.issuer,
            audiences=verifier.audiences,
            now=time.time(),
            leeway=verifier.leeway,
        )

    stages: dict[str, Callable[[], object]] = {
        "verify (all)": lambda: verifier.verify(token),
        "signature": lambda: key.verify(parts.signing_input, parts.signature),
        "split + signature base64": lambda: compact.split_compact(token, 8192),
        "payload base64 + JSON": lambda: compact.json_object(parts.encoded_payload, "p"),
        "claims + result": check_claims,
    }
    return {name: 1e6 / rate(work, duration) for name, work in stages.items()}


def stage_table(rows: Sequence[dict[str, Any]]) -> str:
    """Where the verifier's time goes, per algorithm, in CPU microseconds per call."""
    names = list(rows[0]["stages_us"])
    lines = ["| alg | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
    for row in rows:
        costs = row["stages_us"]
        lines.append(f"| {row['alg']} | " + " | ".join(f"{costs[n]:.1f}" for n in names) + " |")
    return "\n".join(lines)


def check_sides(token: str, sides: dict[str, Callable[[], None]], verifier: TokenVerifier) -> None:
    """Every side accepts the token, and ours refuses it once a claim is altered."""
    for work in sides.values():
        work()
    header, payload, signature = token.split(".")
    claims = json.loads(_b64decode(payload))
    claims["scope"] += " admin"
    altered = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    try:
        verifier.verify(f"{header}.{altered}.{signature}")
    except InvalidToken:
        return
    raise RuntimeError("the verifier accepted an altered token")


def main(argv: Sequence[str] | None = None) -> int:
    """Set up the service, fetch a token per algorithm, measure, print the table."""
    options = parse_args(argv)
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    print(f"pinned to cores {sorted(os.sched_getaffinity(0))}; load {os.getloadavg()}")
    wrk_path = wrk.ensure_wrk() if options.introspection_seconds > 0 else ""
    rows, runs = [], []
    introspection_runs: list[introspection.IntrospectionRun] = []
    with (
        tempfile.TemporaryDirectory(prefix="bench-verify-") as tmp,
        contextlib.ExitStack() as stack,
    ):
        workdir = Path(tmp)
        fixture = service.prepare(workdir, base_env())
        port = servers.free_port()
        issuer = f"http://127.0.0.1:{port}"
        argv_ = servers.command("granian", servers.SERVICE_FACTORY, port, service=True)
        env = fixture.with_issuer(issuer)
        idp = stack.enter_context(
            servers.serving("idp", argv_, port, env, workdir / "idp.log", IDP_CORE)
        )
        jwks_bytes = checks.fetch(idp.base_url + "/jwks.json")
        jwks = json.loads(jwks_bytes)
        for alg, client in fixture.clients.items():
            token = checks.check_service_token(
                idp.base_url + "/token", client.basic_credentials, alg, jwks_bytes
            )
            verifier = TokenVerifier(issuer, issuer)
            sides = {
                "ours": ours_side(token, verifier),
                "joserfc": joserfc_side(token, jwks, issuer, alg),
                "cryptography": cryptography_side(token, jwks),
            }
            check_sides(token, sides, verifier)
            print(f"{alg}: token of {len(token)} bytes, kid {verifier.verify(token).kid}")
            alg_runs = measure(alg, sides, options)
            runs.extend(alg_runs)
            rows.append(summarize(alg, alg_runs))
            costs = stage_costs(token, verifier, min(options.duration, 1.0))
            rows[-1]["stages_us"] = costs
            print(f"{alg} CPU per call: " + ", ".join(f"{k} {v:.1f} us" for k, v in costs.items()))
        if options.introspection_seconds > 0:
            # Fresh tokens: the ones above may be near their expiry by now.
            tokens = {
                alg: (
                    client.basic_credentials,
                    checks.check_service_token(
                        idp.base_url + "/token", client.basic_credentials, alg, jwks_bytes
                    ),
                )
                for alg, client in fixture.clients.items()
            }
            introspection_runs = introspection.measure(
                wrk_path,
                idp,
                IDP_CORE,
                LOAD_CORE,
                tokens,
                seconds=options.introspection_seconds,
                runs=options.runs,
            )
    print()
    print(table(rows))
    print()
    print(stage_table(rows))
    introspection_rows = introspection.summarize(introspection_runs)
    if introspection_rows:
        print()
        print(introspection.table(introspection_rows))
    print(f"load at end {os.getloadavg()}")
    if options.output:
        document = {
            "machine": machine(),
            "options": {
                "duration": options.duration,
                "runs": options.runs,
                "introspection_seconds": options.introspection_seconds,
            },
            "summary": rows,
            "runs": [r.__dict__ for r in runs],
            "introspection": {
                "summary": introspection_rows,
                "runs": introspection.as_dicts(introspection_runs),
            },
        }
        write_results(options.output, document)
        print(f"results: {options.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
