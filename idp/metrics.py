"""Prometheus metrics of one app instance, each in a registry of its own.

The hot paths (/token, /jwks.json) pay one cached child lookup and one increment; key
ages are computed only when /metrics is scraped, from the in-memory key ring. With one
worker the process counts in memory. With several (``idp serve --workers N``), each worker
writes its counts to files in a directory they share (prometheus-client's multiprocess
mode, ``Settings.metrics_dir``), and a scrape, whichever worker answers it, adds up every
worker's counts.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from idp.clock import Clock
from idp.config import Settings
from idp.keyring.ring import KeyRingService

# Token latencies: ES256 signs in well under a millisecond, RS256-2048 in a few.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
# Sign-in pages: a login hashes a password with argon2id (tens to hundreds of milliseconds).
PAGE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class KeyRingCollector(Collector):
    """Active key age and time to the next scheduled rotation, per algorithm, at scrape time."""

    def __init__(self, keys: KeyRingService, settings: Settings, clock: Clock) -> None:
        self._keys = keys
        self._interval = settings.key_rotation_interval
        self._clock = clock

    def collect(self) -> Iterator[Metric]:
        age = GaugeMetricFamily(
            "idp_signing_key_age_seconds",
            "Seconds since the active signing key of each algorithm was activated.",
            labels=["alg"],
        )
        until = GaugeMetricFamily(
            "idp_signing_key_next_rotation_seconds",
            "Seconds until the scheduled rotation of each algorithm's ring "
            "(activated_at + IDP_KEY_ROTATION_INTERVAL - now; negative when overdue).",
            labels=["alg"],
        )
        if self._keys.loaded:
            now = self._clock()
            for alg, activated_at in sorted(self._keys.ring.activated_at.items()):
                age.add_metric([alg], now - activated_at)
                until.add_metric([alg], activated_at + self._interval - now)
        yield age
        yield until


class Metrics:
    """The counters and histograms of one app, and the text a scrape gets."""

    def __init__(self, keys: KeyRingService, settings: Settings, clock: Clock) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.tokens_issued = Counter(
            "idp_tokens_issued",
            "Access tokens issued, by grant type and signing algorithm.",
            ["grant_type", "alg"],
            registry=self.registry,
        )
        self.token_latency = Histogram(
            "idp_token_request_duration_seconds",
            "Time to answer a token request, successful or not.",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        pages = Histogram(
            "idp_page_request_duration_seconds",
            "Time to answer the browser sign-in endpoints, by endpoint (authorize, login).",
            ["endpoint"],
            buckets=PAGE_BUCKETS,
            registry=self.registry,
        )
        self._pages = {name: pages.labels(endpoint=name) for name in ("authorize", "login")}
        self.jwks_requests = Counter(
            "idp_jwks_requests", "Requests for /jwks.json.", registry=self.registry
        )
        self.jwks_not_modified = Counter(
            "idp_jwks_not_modified",
            "Requests for /jwks.json answered 304 Not Modified.",
            registry=self.registry,
        )
        introspections = Counter(
            "idp_introspections",
            "Introspection requests answered (RFC 7662), by whether the token was active.",
            ["active"],
            registry=self.registry,
        )
        self._introspections = {
            active: introspections.labels(active=str(active).lower()) for active in (True, False)
        }
        revocations = Counter(
            "idp_revocations",
            "Revocation requests answered (RFC 7009), by whether they revoked anything.",
            ["revoked"],
            registry=self.registry,
        )
        self._revocations = {
            revoked: revocations.labels(revoked=str(revoked).lower()) for revoked in (True, False)
        }
        self.security_events = Counter(
            "idp_security_events",
            "Security events (sign-ins, throttling, locks, token replay, consent, key "
            "failures), by audit action and outcome; each is also in the audit trail.",
            ["action", "outcome"],
            registry=self.registry,
        )
        self._key_ring = KeyRingCollector(keys, settings, clock)
        self.registry.register(self._key_ring)
        self._shared_dir = settings.metrics_dir
        self._issued: dict[tuple[str, str], Counter] = {}

    def token_issued(self, grant_type: str, alg: str) -> None:
        """Count one issued token; the labelled child is made once per pair and kept."""
        child = self._issued.get((grant_type, alg))
        if child is None:
            child = self.tokens_issued.labels(grant_type=grant_type, alg=alg)
            self._issued[(grant_type, alg)] = child
        child.inc()

    def page_answered(self, endpoint: str, seconds: float) -> None:
        """Observe one answer of a sign-in page (``authorize`` or ``login``)."""
        self._pages[endpoint].observe(seconds)

    def introspected(self, active: bool) -> None:
        """Count one introspection answer."""
        self._introspections[active].inc()

    def revoked(self, revoked: bool) -> None:
        """Count one revocation answer (False: nothing changed, or not this client's token)."""
        self._revocations[revoked].inc()

    def security_event(self, action: str, outcome: str) -> None:
        """Count one security event (``idp.store.security_events``)."""
        self.security_events.labels(action=action, outcome=outcome).inc()

    def exposition(self) -> bytes:
        """The Prometheus text format of this app's metrics: its own registry, or with a
        shared directory, every worker's counts added up and this worker's key gauges."""
        if self._shared_dir is None:
            return generate_latest(self.registry)
        every_worker = CollectorRegistry()
        MultiProcessCollector(every_worker, path=self._shared_dir)  # type: ignore[no-untyped-call]
        every_worker.register(self._key_ring)
        return generate_latest(every_worker)
