"""Logins per second through the served IdP, and JWKS latency while logins saturate the cores.

Part 1, in this process pinned to core 0: the argon2id parameters ``idp.sso.passwords`` uses,
the time of one hash and one verification (median and p90), and how many verifications
one core completes per second.

Part 2: a throwaway service (temp SQLite store, one public client, one user) runs as the
product does: ``idp serve`` (granian, one worker, both cores). A child process runs
``--clients`` browsers, each looping over a real sign-in: ``GET /authorize`` (PKCE S256,
a fresh cookie jar each time, so no session short-cuts the login), parse the sealed form
and CSRF token, ``POST /login`` with the right password, check the 303 to the
redirect_uri carries a code. Meanwhile this process sends ``GET /jwks.json`` at a fixed
rate (open loop: latency counts from when a request was due, so a stalled loop cannot hide
its stalls), first on the idle server, then in ``--runs`` windows while the logins run.
Each window gives logins per second and the JWKS latencies; figures are medians over the
windows. Target: p99 under 50 ms while logging in.

Run it as ``bench/login`` (``--help`` for the options, ``--quick`` for a smoke run).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import datetime
import functools
import hashlib
import html
import multiprocessing
import os
import re
import secrets
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
from argon2 import PasswordHasher, extract_parameters

from bench import service, token_endpoint
from bench.servers import Server, core_jiffies, free_port, start, stop, tail, wait_ready
from idp.sso.passwords import hash_password

BASE_NICE = os.getpriority(os.PRIO_PROCESS, 0)
TARGET_P99_MS = 50.0
USERNAME = "bench-user"
PASSWORD = "correct horse battery staple"
REDIRECT_URI = "http://127.0.0.1:9/callback"
_INPUT = re.compile(r'<input[^>]*name="(?P<name>[^"]+)"[^>]*value="(?P<value>[^"]*)"')


@dataclass(frozen=True)
class Options:
    """How long to measure, how hard to load, and which hash concurrencies to try."""

    samples: int
    duration: float
    warmup: float
    runs: int
    rate: float
    clients: int
    concurrency: tuple[int | None, ...]
    output: Path | None


# -- part 1: the parameters' cost -----------------------------------------------------------


def _timed_ms(call: Any, count: int) -> list[float]:
    times = []
    for _ in range(count):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    return times


def argon2_cost(options: Options) -> dict[str, Any]:
    """Hash and verify times, and verifications per second, on core 0 alone."""
    os.sched_setaffinity(0, {0})
    try:
        stored = hash_password(PASSWORD)
        parameters = extract_parameters(stored)
        hasher = PasswordHasher.from_parameters(parameters)
        hash_ms = _timed_ms(lambda: hash_password(PASSWORD), options.samples)
        verify_ms = _timed_ms(lambda: hasher.verify(stored, PASSWORD), options.samples)
        done, started = 0, time.perf_counter()
        while time.perf_counter() - started < options.duration:
            hasher.verify(stored, PASSWORD)
            done += 1
        per_second = done / (time.perf_counter() - started)
    finally:
        os.sched_setaffinity(0, set(range(os.cpu_count() or 1)))
    return {
        "parameters": {
            "type": parameters.type.name,
            "version": parameters.version,
            "time_cost": parameters.time_cost,
            "memory_cost_kib": parameters.memory_cost,
            "parallelism": parameters.parallelism,
            "hash_len": parameters.hash_len,
            "salt_len": parameters.salt_len,
        },
        "hash_ms": _summary(hash_ms),
        "verify_ms": _summary(verify_ms),
        "verifications_per_second_one_core": round(per_second, 2),
    }


def _summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "median": round(statistics.median(ordered), 2),
        "p90": round(ordered[int(0.9 * (len(ordered) - 1))], 2),
        "min": round(ordered[0], 2),
        "max": round(ordered[-1], 2),
    }


# -- the service --------------------------------------------------------------------------


@dataclass(frozen=True)
class LoginFixture:
    """The service's environment and the public client the browsers sign in to."""

    env: dict[str, str]
    client_id: str


def prepare(workdir: Path) -> LoginFixture:
    """The throwaway service plus a public client and a user, made with the ``idp`` command."""
    fixture = service.prepare(workdir, token_endpoint.base_env())
    env = fixture.with_issuer("http://127.0.0.1:8000")
    client = service._idp_json(
        env,
        "clients",
        "create",
        "--name",
        "bench-login",
        "--public",
        "--redirect-uri",
        REDIRECT_URI,
    )
    service._idp_json(
        env, "users", "create", "--username", USERNAME, "--password-stdin", stdin=PASSWORD
    )
    return LoginFixture(fixture.env, client["client_id"])


@contextlib.contextmanager
def serving(workdir: Path, fixture: LoginFixture, concurrency: int | None) -> Iterator[Server]:
    """``idp serve`` (granian, one worker, every core) on a free port; yield it, then stop it."""
    port = free_port()
    # Every browser signs in to one account from one address, and attempts in flight count
    # against the login throttle until they succeed: allow more of them than browsers.
    env = fixture.env | {
        "IDP_ISSUER": f"http://127.0.0.1:{port}",
        "IDP_LOGIN_MAX_FAILURES": "1000",
        "IDP_LOGIN_MAX_FAILURES_PER_IP": "100000",
    }
    if concurrency is not None:
        env["IDP_PASSWORD_HASH_CONCURRENCY"] = str(concurrency)
    log = workdir / f"server-{concurrency or 'default'}.log"
    server = start(
        "granian",
        [str(service.IDP), "serve", "--port", str(port)],
        port,
        env,
        log,
        None,
        # The server runs at this process's own priority, not the prober's raised one.
        preexec_fn=functools.partial(os.setpriority, os.PRIO_PROCESS, 0, BASE_NICE),
    )
    try:
        wait_ready(server)
        yield server
    finally:
        stop(server)
        if server.process.returncode not in (0, -signal.SIGTERM):
            print(tail(log), file=sys.stderr)


# -- one sign-in --------------------------------------------------------------------------


def _authorize_url(client_id: str) -> tuple[str, str]:
    """A fresh authorization request (PKCE S256, state, nonce) and its state."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    state = secrets.token_urlsafe(8)
    query = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": REDIRECT_URI,
        "scope": "openid profile",
        "state": state,
        "nonce": secrets.token_urlsafe(8),
        "code_challenge": challenge.rstrip(b"=").decode(),
        "code_challenge_method": "S256",
    }
    return "/authorize?" + urlencode(query), state


async def sign_in(browser: httpx.AsyncClient, client_id: str) -> None:
    """One full sign-in from a browser without a session; raise unless it ends with a code."""
    browser.cookies.clear()
    url, state = _authorize_url(client_id)
    page = await browser.get(url)
    if page.status_code != 200 or 'name="password"' not in page.text:
        raise RuntimeError(f"GET /authorize answered {page.status_code}, not the login form")
    fields = {m["name"]: html.unescape(m["value"]) for m in _INPUT.finditer(page.text)}
    done = await browser.post(
        "/login",
        data={
            "request": fields["request"],
            "csrf": fields["csrf"],
            "username": USERNAME,
            "password": PASSWORD,
        },
    )
    location = done.headers.get("location", "")
    answer = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
    if (
        done.status_code != 303
        or not location.startswith(REDIRECT_URI + "?")
        or not answer.get("code")
        or answer.get("state") != state
    ):
        raise RuntimeError(f"POST /login answered {done.status_code} to {location!r}")


def _logging_in(
    base_url: str, client_id: str, clients: int, nice: int, stop: Event, results: Any
) -> None:
    """Child process at niceness ``nice``: browsers sign in until ``stop``; send back the times."""
    os.setpriority(os.PRIO_PROCESS, 0, nice)
    finished: list[float] = []
    errors: list[str] = []

    async def browser_loop() -> None:
        async with httpx.AsyncClient(base_url=base_url, timeout=60) as browser:
            while not stop.is_set():
                try:
                    await sign_in(browser, client_id)
                except (RuntimeError, httpx.HTTPError) as exc:
                    errors.append(str(exc))
                    if len(errors) > 20:
                        stop.set()
                    continue
                finished.append(time.monotonic())

    async def run() -> None:
        await asyncio.gather(*(browser_loop() for _ in range(clients)))

    asyncio.run(run())
    results.put((finished, errors))


# -- JWKS latency ---------------------------------------------------------------------------


async def probe(base_url: str, rate: float, duration: float) -> list[float]:
    """Latencies (ms) of GET /jwks.json sent at ``rate`` per second, from when each was due."""
    latencies: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=30) as client:

        async def one(due: float) -> None:
            nonlocal errors
            response = await client.get("/jwks.json")
            if response.status_code != 200:
                errors += 1
            latencies.append((time.perf_counter() - due) * 1000)

        tasks = []
        started = time.perf_counter()
        for i in range(int(rate * duration)):
            due = started + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(due)))
        await asyncio.gather(*tasks)
    if errors:
        raise RuntimeError(f"{errors} JWKS requests failed")
    return latencies


def _latency_summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)

    def pct(p: float) -> float:
        return round(ordered[min(int(p * len(ordered)), len(ordered) - 1)], 2)

    return {
        "requests": len(ordered),
        "p50_ms": pct(0.50),
        "p90_ms": pct(0.90),
        "p99_ms": pct(0.99),
        "max_ms": round(ordered[-1], 2),
    }


def _core_ticks() -> list[tuple[int, int]]:
    return [core_jiffies(c) for c in range(os.cpu_count() or 1)]


def _busy(before: list[tuple[int, int]], after: list[tuple[int, int]]) -> list[float]:
    return [
        round((b1 - b0) / max(t1 - t0, 1), 3)
        for (b0, t0), (b1, t1) in zip(before, after, strict=True)
    ]


def measure(base_url: str, client_id: str, options: Options) -> dict[str, Any]:
    """JWKS latency on the idle server, then logins/s and JWKS latency in each window."""
    asyncio.run(sign_in_once(base_url, client_id))
    asyncio.run(probe(base_url, options.rate, options.warmup))
    idle = asyncio.run(probe(base_url, options.rate, options.duration))
    context = multiprocessing.get_context("spawn")
    stop = context.Event()
    results = context.Queue()
    child = context.Process(
        target=_logging_in, args=(base_url, client_id, options.clients, BASE_NICE, stop, results)
    )
    child.start()
    windows = []
    try:
        time.sleep(options.warmup)
        for _ in range(options.runs):
            if stop.is_set():
                break
            before, started = _core_ticks(), time.monotonic()
            latencies = asyncio.run(probe(base_url, options.rate, options.duration))
            windows.append((started, time.monotonic(), latencies, _busy(before, _core_ticks())))
    finally:
        stop.set()
        finished, errors = results.get(timeout=120)
        child.join(timeout=30)
    if errors:
        raise RuntimeError(f"{len(errors)} sign-ins failed, first: {errors[0]}")
    runs: list[dict[str, Any]] = []
    for started, ended, latencies, busy in windows:
        done = sum(1 for t in finished if started <= t < ended)
        runs.append(
            {
                "logins": done,
                "logins_per_second": round(done / (ended - started), 2),
                "jwks": _latency_summary(latencies),
                "core_busy_share": busy,
            }
        )
    return {
        "idle": _latency_summary(idle),
        "runs": runs,
        "median_logins_per_second": round(
            statistics.median(r["logins_per_second"] for r in runs), 2
        ),
        "median_p99_ms": round(statistics.median(r["jwks"]["p99_ms"] for r in runs), 2),
        "worst_p99_ms": max(r["jwks"]["p99_ms"] for r in runs),
        "median_p50_ms": round(statistics.median(r["jwks"]["p50_ms"] for r in runs), 2),
        "p99_target_ms": TARGET_P99_MS,
        "p99_met": statistics.median(r["jwks"]["p99_ms"] for r in runs) < TARGET_P99_MS,
    }


async def sign_in_once(base_url: str, client_id: str) -> None:
    """Check the flow works (and warm the server) before measuring."""
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as browser:
        await sign_in(browser, client_id)


# -- main -----------------------------------------------------------------------------------


def parse_options(argv: list[str]) -> Options:
    parser = argparse.ArgumentParser(prog="bench/login", description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=30, help="timed hashes and verifies")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per window")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds before measuring")
    parser.add_argument("--runs", type=int, default=5, help="measured windows per server")
    parser.add_argument("--rate", type=float, default=50.0, help="JWKS requests per second")
    parser.add_argument("--clients", type=int, default=8, help="concurrent browsers")
    parser.add_argument(
        "--hash-concurrency",
        type=int,
        action="append",
        help="IDP_PASSWORD_HASH_CONCURRENCY to serve with (repeatable; default: unset)",
    )
    parser.add_argument("--quick", action="store_true", help="short runs, a smoke test")
    parser.add_argument("--output", type=Path, help="JSON results file")
    parser.add_argument("--no-output", action="store_true", help="write no results file")
    args = parser.parse_args(argv)
    if args.quick:
        args.samples, args.duration, args.warmup, args.runs = 5, 3.0, 1.0, 2
    output = None if args.no_output else args.output or token_endpoint.default_output("login")
    return Options(
        args.samples,
        args.duration,
        args.warmup,
        args.runs,
        args.rate,
        args.clients,
        tuple(args.hash_concurrency or (None,)),
        output,
    )


def _print_cost(cost: dict[str, Any]) -> None:
    p = cost["parameters"]
    print(
        f"  {p['type']} t={p['time_cost']} m={p['memory_cost_kib']} KiB p={p['parallelism']}: "
        f"hash {cost['hash_ms']['median']} ms, verify {cost['verify_ms']['median']} ms "
        f"(p90 {cost['verify_ms']['p90']} ms), "
        f"{cost['verifications_per_second_one_core']} verifications/s on one core",
        flush=True,
    )


def _print_logins(result: dict[str, Any]) -> None:
    s = result["idle"]
    print(f"  idle     JWKS p50 {s['p50_ms']} ms, p99 {s['p99_ms']} ms, max {s['max_ms']} ms")
    for i, run in enumerate(result["runs"], 1):
        j = run["jwks"]
        print(
            f"  window {i} {run['logins_per_second']} logins/s, JWKS p50 {j['p50_ms']} ms, "
            f"p90 {j['p90_ms']} ms, p99 {j['p99_ms']} ms, max {j['max_ms']} ms, "
            f"cores busy {run['core_busy_share']}",
            flush=True,
        )
    print(
        f"  median   {result['median_logins_per_second']} logins/s, "
        f"JWKS p99 {result['median_p99_ms']} ms (worst window {result['worst_p99_ms']} ms); "
        f"target {TARGET_P99_MS:.0f} ms {'met' if result['p99_met'] else 'MISSED'}",
        flush=True,
    )


def main(argv: list[str]) -> int:
    options = parse_options(argv)
    # A terminated run still stops its server and browsers (the finally blocks run).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    load_at_start = os.getloadavg()
    print(f"load average at start: {load_at_start}")
    print("argon2id cost on one core ...", flush=True)
    cost = argon2_cost(options)
    _print_cost(cost)
    prober_nice = _raise_priority()
    servers: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="idp-bench-login-") as workdir:
        fixture = prepare(Path(workdir))
        for concurrency in options.concurrency:
            label = f"hash_concurrency_{concurrency or 'default'}"
            if label in servers:
                label += f"_run{sum(k.startswith(label) for k in servers) + 1}"
            print(
                f"idp serve, IDP_PASSWORD_HASH_CONCURRENCY={concurrency or 'unset'}, "
                f"{options.clients} browsers, JWKS at {options.rate:g}/s "
                f"(prober nice {prober_nice}) ...",
                flush=True,
            )
            with serving(Path(workdir), fixture, concurrency) as server:
                servers[label] = measure(server.base_url, fixture.client_id, options)
            _print_logins(servers[label])
    load_at_end = os.getloadavg()
    print(f"load average at end: {load_at_end}")
    document = {
        "bench": "login",
        "when": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": token_endpoint.machine(),
        "options": {k: str(v) if isinstance(v, Path) else v for k, v in options.__dict__.items()},
        "load_average_at_start": load_at_start,
        "load_average_at_end": load_at_end,
        "prober_nice": prober_nice,
        "argon2": cost,
        "servers": servers,
    }
    if options.output is not None:
        token_endpoint.write_results(options.output, document)
        print(f"results: {options.output}")
    return 0


def _raise_priority() -> int:
    """Run the prober at nice -5 when allowed, so its own scheduling delay stays small."""
    with contextlib.suppress(PermissionError):
        os.setpriority(os.PRIO_PROCESS, 0, -5)
    return os.getpriority(os.PRIO_PROCESS, 0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
