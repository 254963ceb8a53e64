"""The long-lived objects an app's endpoints share, built once at start."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from idp.clock import Clock
from idp.config import Settings
from idp.keyring.ring import KeyRingService
from idp.metrics import Metrics
from idp.store.base import Store


@dataclass
class Services:
    """Settings, store, key ring, clock and metrics, reachable from every request."""

    settings: Settings
    store: Store
    keys: KeyRingService
    clock: Clock
    metrics: Metrics
    discovery: bytes = b""


def services(request: Request) -> Services:
    found: Services = request.app.state.services
    return found
