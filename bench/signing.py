"""The raw signing limit of the ``cryptography`` library on one core (RS256 and ES256).

One call is what a JWS signature costs at the bottom of every Python token service:
``RSAPrivateKey.sign`` with PKCS#1 v1.5 and SHA-256 (RFC 7518 section 3.3, a 2048-bit
key) or ``EllipticCurvePrivateKey.sign`` with ECDSA and SHA-256 (section 3.4, P-256; the
DER signature, before its conversion to R || S). The message is the signing input of a
real access token. The calling thread is pinned to one core while it signs; the rate is
counted per CPU second of that thread (steady when other work shares the core) and per
wall-clock second.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

RSA_KEY_BITS = 2048
BATCH = 20


@dataclass(frozen=True)
class SigningRun:
    """One timed run of one algorithm: signatures per CPU and per wall-clock second."""

    alg: str
    round: int
    signatures: int
    per_cpu_second: float
    per_wall_second: float


def signer(alg: str) -> Callable[[bytes], bytes]:
    """One fresh key's sign call for ``alg``, its padding and hash objects built once."""
    if alg == "RS256":
        rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=RSA_KEY_BITS)
        pkcs1, sha256 = padding.PKCS1v15(), hashes.SHA256()
        return lambda message: rsa_key.sign(message, pkcs1, sha256)
    if alg == "ES256":
        ec_key = ec.generate_private_key(ec.SECP256R1())
        ecdsa = ec.ECDSA(hashes.SHA256())
        return lambda message: ec_key.sign(message, ecdsa)
    raise ValueError(f"unsupported alg {alg!r}")


@contextmanager
def pinned(core: int) -> Iterator[None]:
    """Run the calling thread on ``core`` only, then restore its affinity."""
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {core})
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def time_signing(
    sign: Callable[[bytes], bytes], message: bytes, seconds: float
) -> tuple[int, float, float]:
    """Sign ``message`` for ``seconds``; the count, CPU seconds and wall seconds it took."""
    count = 0
    cpu, wall = time.thread_time(), time.perf_counter()
    deadline = wall + seconds
    while time.perf_counter() < deadline:
        for _ in range(BATCH):
            sign(message)
        count += BATCH
    return count, time.thread_time() - cpu, time.perf_counter() - wall


def measure(
    messages: Mapping[str, bytes], *, seconds: float, rounds: int, core: int
) -> list[SigningRun]:
    """``rounds`` runs of ``seconds`` per algorithm on ``core``, the algorithms alternating."""
    signers = {alg: signer(alg) for alg in messages}
    runs = []
    with pinned(core):
        for alg, message in messages.items():
            time_signing(signers[alg], message, min(seconds, 0.5))
        for index in range(1, rounds + 1):
            for alg, message in messages.items():
                count, cpu, wall = time_signing(signers[alg], message, seconds)
                rates = count / max(cpu, 1e-9), count / max(wall, 1e-9)
                runs.append(SigningRun(alg, index, count, *rates))
    return runs


def summarize(runs: list[SigningRun]) -> dict[str, dict[str, float]]:
    """Per algorithm: the median signatures per CPU second and per wall-clock second."""
    summary = {}
    for alg in dict.fromkeys(r.alg for r in runs):
        mine = [r for r in runs if r.alg == alg]
        summary[alg] = {
            "per_cpu_second": statistics.median(r.per_cpu_second for r in mine),
            "per_wall_second": statistics.median(r.per_wall_second for r in mine),
            "cpu_us_per_signature": 1e6 / statistics.median(r.per_cpu_second for r in mine),
        }
    return summary
