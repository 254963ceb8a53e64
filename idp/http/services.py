"""The long-lived objects an app's endpoints share, built once at start."""

from __future__ import annotations

from dataclasses import dataclass, field

from starlette.requests import Request

from idp.clock import Clock
from idp.config import Settings
from idp.keyring.ring import KeyRingService
from idp.metrics import Metrics
from idp.oauth.client_keys import ClientKeySets
from idp.oauth.dpop_proofs import DpopPolicy
from idp.sealing import FormSealer
from idp.sso.backchannel import BackchannelNotifier
from idp.sso.passwords import PasswordService
from idp.store.base import Store
from idp.store.security_events import AuditedEvents


@dataclass
class Services:
    """What every request can reach: settings, store, keys, clock, metrics, passwords, sealing,
    the back-channel logout notifier and the security events' sink."""

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
    client_keys: ClientKeySets = field(init=False)
    """The clients' public keys for private_key_jwt, parsed and fetched once per process."""
    events: AuditedEvents = field(init=False)
    """Security events: an audit row each, counted in ``idp_security_events``."""
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
        self.client_keys = ClientKeySets(self.clock)
        self.events = AuditedEvents(self.store, self.clock, self.metrics.security_event)
        self.dpop = DpopPolicy.from_settings(self.settings)


def services(request: Request) -> Services:
    found: Services = request.app.state.services
    return found


def client_address(request: Request) -> str:
    """The client's address: the peer, or behind a trusted proxy the hop it forwarded for
    (:class:`idp.http.middleware.TrustedProxies` sets it on the request); "" when unknown."""
    return request.client.host if request.client else ""
