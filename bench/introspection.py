"""Introspection requests per second against a served IdP (part of bench/verify).

The IdP (``idp serve``, granian, one worker) runs pinned to one core; wrk runs pinned to
the other and POSTs ``/introspect`` for one live access token over 16 keep-alive
connections, authenticated with client_secret_basic as the client the token was issued
to. Each answer must be a 200 with ``"active":true`` (bench/requests.lua counts any
other). A request does all the endpoint's work: form parsing, client lookup and secret
check, the key-ring version read, signature and claims, the jti revocation lookup, and
the JSON answer.
"""

from __future__ import annotations

import json
import statistics
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import urlencode

from bench import servers, wrk

ACTIVE = '"active":true'
CONNECTIONS = 16
TIMEOUT = 10


@dataclass(frozen=True)
class IntrospectionRun:
    """One wrk run against /introspect for one algorithm's token."""

    alg: str
    index: int
    requests_per_second: float
    p99_ms: float
    failures: int
    server_cpu_share: float
    server_core_busy: float

    @property
    def per_server_cpu_second(self) -> float:
        """Requests per CPU second the server actually got: steadier on a shared machine."""
        return self.requests_per_second / max(self.server_cpu_share, 1e-9)


def form(token: str) -> str:
    return urlencode({"token": token, "token_type_hint": "access_token"})


def check_active(url: str, basic: str, token: str) -> dict[str, Any]:
    """Introspect once; the token must be active (else the figures would mean nothing)."""
    request = urllib.request.Request(  # noqa: S310
        url,
        data=form(token).encode(),
        headers={
            "Authorization": f"Basic {basic}",
            "Content-Type": "application/x-www-form-urlencoded",
        },
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=TIMEOUT) as response:  # noqa: S310
        answer: dict[str, Any] = json.loads(response.read())
    if answer.get("active") is not True:
        raise RuntimeError(f"{url}: the benchmark token is not active: {answer}")
    return answer


def load(
    wrk_path: str, url: str, basic: str, token: str, *, seconds: float, core: int
) -> wrk.WrkResult:
    """One wrk run of ``seconds`` from ``core`` against the introspection endpoint."""
    return wrk.run(
        wrk_path,
        url,
        duration=seconds,
        connections=CONNECTIONS,
        threads=1,
        core=core,
        request=wrk.Request(basic=basic, body=form(token), expect=ACTIVE),
    )


def measure(
    wrk_path: str,
    idp: servers.Server,
    idp_core: int,
    load_core: int,
    tokens: dict[str, tuple[str, str]],
    *,
    seconds: float,
    runs: int,
) -> list[IntrospectionRun]:
    """Warm up, then ``runs`` runs per algorithm, alternating algorithms run by run.

    ``tokens`` maps alg to (client Basic credentials, access token).
    """
    url = idp.base_url + "/introspect"
    for basic, token in tokens.values():
        check_active(url, basic, token)
        load(wrk_path, url, basic, token, seconds=min(seconds, 2), core=load_core)
    results = []
    for index in range(runs):
        for alg, (basic, token) in tokens.items():
            meter = servers.CpuMeter(idp, idp_core)
            started = time.monotonic()
            result = load(wrk_path, url, basic, token, seconds=seconds, core=load_core)
            cpu = meter.stop()
            if not result.ok:
                raise RuntimeError(f"{alg} run {index + 1}: failed requests: {result}")
            results.append(
                IntrospectionRun(
                    alg,
                    index,
                    result.requests_per_second,
                    result.p99_ms,
                    result.non_200 + result.non_2xx_3xx + result.socket_errors,
                    cpu.server_share,
                    cpu.core_busy_share,
                )
            )
            print(
                f"introspection {alg} run {index + 1}: {result.requests_per_second:,.0f}/s, "
                f"{results[-1].per_server_cpu_second:,.0f} per server CPU second, "
                f"p99 {result.p99_ms:.1f} ms, server {cpu.server_share:.0%} of core "
                f"{idp_core} ({time.monotonic() - started:.0f} s)",
                flush=True,
            )
    return results


def summarize(runs: Sequence[IntrospectionRun]) -> list[dict[str, Any]]:
    """Per algorithm: median requests per second, p99 and server CPU share; the spread."""
    rows = []
    for alg in dict.fromkeys(r.alg for r in runs):
        mine = [r for r in runs if r.alg == alg]
        rates = [r.requests_per_second for r in mine]
        rows.append(
            {
                "alg": alg,
                "requests_per_second": statistics.median(rates),
                "per_server_cpu_second": statistics.median(r.per_server_cpu_second for r in mine),
                "cpu_us_per_request": 1e6
                / statistics.median(r.per_server_cpu_second for r in mine),
                "min": min(rates),
                "max": max(rates),
                "p99_ms": statistics.median(r.p99_ms for r in mine),
                "server_cpu_share": statistics.median(r.server_cpu_share for r in mine),
                "server_core_busy": statistics.median(r.server_core_busy for r in mine),
            }
        )
    return rows


def table(rows: Sequence[dict[str, Any]]) -> str:
    lines = [
        "| token alg | introspections /s | min - max | per server CPU second | server CPU µs "
        "per request | p99 ms | server's share of its core |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row['alg']} | {row['requests_per_second']:,.0f} | "
            f"{row['min']:,.0f} - {row['max']:,.0f} | {row['per_server_cpu_second']:,.0f} | "
            f"{row['cpu_us_per_request']:.0f} | {row['p99_ms']:.1f} | "
            f"{row['server_cpu_share']:.0%} |"
        )
    return "\n".join(lines)


def as_dicts(runs: Sequence[IntrospectionRun]) -> list[dict[str, Any]]:
    return [{**asdict(r), "per_server_cpu_second": r.per_server_cpu_second} for r in runs]
