"""The long-lived objects an app's endpoints share, built once at start."""

from __future__ import annotations

from dataclasses import dataclass, field

from starlette.requests import Request

from idp.clock import Clock
from idp.config import Settings
from idp.keyring.ring import KeyRingService
from idp.metrics import Metrics
from idp.oauth.dpop_proofs import DpopPolicy
from idp.sealing import FormSealer
from idp.sso.backchannel import BackchannelNotifier
from idp.sso.passwords import PasswordService
from idp.store.base import Store


@dataclass
class Services:
    """What every request can reach: settings, store, keys, clock, metrics, passwords, sealing
    and the back-channel logout notifier."""

    settings: Settings
    store: Store
    keys: KeyRingService
    clock: Clock
    metrics: Metrics
    discovery: bytes = b""
    public_headers: list[tuple[str, str]] = field(init=False)
    """The cache headers of the public documents (discovery, JWKS), ready to send."""
    passwords: PasswordService = field(init=False)
    sealer: FormSealer = field(init=False)
    notifier: BackchannelNotifier = field(init=False)
    dpop: DpopPolicy = field(init=False)
    """How DPoP proofs are judged (RFC 9449): their age window and server nonces."""

    def __post_init__(self) -> None:
        self.public_headers = [
            ("cache-control", f"public, max-age={self.settings.jwks_max_age}"),
            ("access-control-allow-origin", "*"),
        ]
        self.passwords = PasswordService(self.settings.password_hash_concurrency)
        self.sealer = FormSealer(self.settings.key_encryption_key)
        self.notifier = BackchannelNotifier(self.settings, self.keys, self.clock)
        self.dpop = DpopPolicy.from_settings(self.settings)


def services(request: Request) -> Services:
    found: Services = request.app.state.services
    return found
