"""Back-Channel Logout 1.0 delivery to real receivers on 127.0.0.1, on both stores.

Each receiver is a small Starlette app under uvicorn that validates the logout token as
section 2.6 asks, against the IdP's JWKS fetched over HTTP from the running service.
Receivers on 127.0.0.1 are reached only with private receivers allowed (a development
setting); without it delivery refuses them, whatever the name resolves through.
"""

from __future__ import annotations

import datetime
import ipaddress
import logging
import ssl
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from idp.config import Settings
from idp.keyring.ring import KeyRingService
from idp.sso.backchannel import (
    BackchannelNotifier,
    BackchannelTarget,
)
from idp.store import make_store
from tests.support.backchannel import Receiver
from tests.support.server import LiveServer, free_port

pytestmark = pytest.mark.anyio


@pytest.fixture
async def keys(live_server: LiveServer) -> AsyncIterator[KeyRingService]:
    """The service's key ring, read from the store the running service uses."""
    store = make_store(live_server.settings.database_url)
    await store.open()
    service = KeyRingService(store, live_server.settings.key_encryption_key)
    await service.load()
    try:
        yield service
    finally:
        await store.close()


@pytest.fixture
def dev_settings(live_server: LiveServer) -> Settings:
    """The service's settings with private receivers allowed (IDP_ALLOW_PRIVATE_BACKCHANNEL=1)."""
    return replace(live_server.settings, allow_private_backchannel=True)


@pytest.fixture
def receivers(live_server: LiveServer) -> Iterator[list[Receiver]]:
    started: list[Receiver] = []
    yield started
    for receiver in started:
        receiver.stop()


def _receiver(
    live_server: LiveServer, receivers: list[Receiver], client_id: str, **options: Any
) -> Receiver:
    receiver = Receiver(live_server.url, client_id, **options).start()
    receivers.append(receiver)
    return receiver


async def test_logout_token_reaches_every_client_and_verifies(
    live_server: LiveServer,
    keys: KeyRingService,
    dev_settings: Settings,
    receivers: list[Receiver],
) -> None:
    first = _receiver(live_server, receivers, "app-one")
    second = _receiver(live_server, receivers, "app-two")
    notifier = BackchannelNotifier(dev_settings, keys, time.time, backoff=0.01)
    before = int(time.time())
    notifier.notify(
        sid="sid-123",
        sub="user-7",
        targets=[
            BackchannelTarget("app-one", first.url),
            BackchannelTarget("app-two", second.url, alg="ES256"),
        ],
    )
    # Delivery is scheduled, not done: the caller did not wait for it.
    assert notifier.pending == 2
    assert first.hits == 0 and second.hits == 0
    await notifier.drain()
    await notifier.aclose()
    for receiver, client_id in ((first, "app-one"), (second, "app-two")):
        assert receiver.rejected == []
        [claims] = receiver.accepted
        assert claims["aud"] == client_id
        assert claims["sid"] == "sid-123" and claims["sub"] == "user-7"
        assert before <= claims["iat"] <= int(time.time())
        assert claims["exp"] - claims["iat"] == 120
    assert first.accepted[0]["jti"] != second.accepted[0]["jti"]


async def test_server_errors_are_retried(
    live_server: LiveServer,
    keys: KeyRingService,
    dev_settings: Settings,
    receivers: list[Receiver],
    caplog: pytest.LogCaptureFixture,
) -> None:
    flaky = _receiver(live_server, receivers, "flaky", failures_first=2)
    notifier = BackchannelNotifier(dev_settings, keys, time.time, backoff=0.01)
    notifier.notify(sid="s", sub="u", targets=[BackchannelTarget("flaky", flaky.url)])
    await notifier.drain()
    await notifier.aclose()
    assert flaky.hits == 3
    assert len(flaky.accepted) == 1
    assert "failed" not in caplog.text


async def test_refusal_is_not_retried_and_is_logged(
    live_server: LiveServer,
    keys: KeyRingService,
    dev_settings: Settings,
    receivers: list[Receiver],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The receiver expects another audience, so it answers 400 (section 2.8).
    strict = _receiver(live_server, receivers, "someone-else")
    notifier = BackchannelNotifier(dev_settings, keys, time.time, backoff=0.01)
    with caplog.at_level(logging.WARNING, logger="idp.sso.backchannel"):
        notifier.notify(sid="s", sub="u", targets=[BackchannelTarget("app", strict.url)])
        await notifier.drain()
    await notifier.aclose()
    assert strict.hits == 1 and strict.accepted == [] and len(strict.rejected) == 1
    assert "HTTP 400" in caplog.text


async def test_unreachable_receiver_is_logged_and_never_raises(
    keys: KeyRingService, dev_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    dead = f"http://127.0.0.1:{free_port()}/backchannel"
    notifier = BackchannelNotifier(dev_settings, keys, time.time, attempts=3, backoff=0.01)
    with caplog.at_level(logging.DEBUG, logger="idp.sso.backchannel"):
        notifier.notify(sid="s", sub="u", targets=[BackchannelTarget("gone", dead)])
        await notifier.drain()
    await notifier.aclose()
    [record] = [r for r in caplog.records if r.name == "idp.sso.backchannel"]
    assert record.levelno == logging.WARNING
    assert "client gone" in record.getMessage()
    assert "3 attempt(s)" in record.getMessage()
    assert "ConnectError" in record.getMessage()
    assert "eyJ" not in caplog.text


async def test_aclose_cancels_deliveries_that_outlast_it(
    keys: KeyRingService, dev_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    dead = f"http://127.0.0.1:{free_port()}/backchannel"
    # Retries that would take minutes: shut-down must not wait for them.
    notifier = BackchannelNotifier(dev_settings, keys, time.time, backoff=60)
    notifier.notify(sid="s", sub="u", targets=[BackchannelTarget("slow", dead)])
    with caplog.at_level(logging.WARNING, logger="idp.sso.backchannel"):
        await notifier.aclose(timeout=0.5)
    assert notifier.pending == 0
    assert "1 deliveries cancelled" in caplog.text


# -- where tokens may go: no private receivers unless allowed, and no DNS rebinding --------


class FakeDns:
    """A resolver that answers from a table and counts the questions (stands in for DNS)."""

    def __init__(self, table: dict[str, list[str]]) -> None:
        self.table = table
        self.asked: list[str] = []

    async def __call__(self, host: str, port: int) -> Sequence[str]:
        self.asked.append(host)
        return self.table[host]


async def deliver_once(notifier: BackchannelNotifier, target: BackchannelTarget) -> None:
    notifier.notify(sid="s", sub="u", targets=[target])
    await notifier.drain()
    await notifier.aclose()


async def test_private_receiver_is_refused_at_delivery_without_the_flag(
    live_server: LiveServer,
    keys: KeyRingService,
    receivers: list[Receiver],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A URI stored while private receivers were allowed is not called once they are not."""
    receiver = _receiver(live_server, receivers, "app")
    assert not live_server.settings.allow_private_backchannel
    notifier = BackchannelNotifier(live_server.settings, keys, time.time, backoff=0.01)
    with caplog.at_level(logging.WARNING, logger="idp.sso.backchannel"):
        await deliver_once(notifier, BackchannelTarget("app", receiver.url))
    assert receiver.hits == 0
    assert "1 attempt(s): refused" in caplog.text and "loopback" in caplog.text


@pytest.mark.parametrize(
    "address", ["127.0.0.1", "10.1.2.3", "169.254.169.254", "::1", "fd00::1", "::ffff:10.0.0.1"]
)
async def test_a_name_resolving_to_a_private_address_is_refused(
    live_server: LiveServer, keys: KeyRingService, caplog: pytest.LogCaptureFixture, address: str
) -> None:
    settings = replace(live_server.settings, issuer="https://id.example")
    dns = FakeDns({"rp.example.com": ["93.184.215.14", address]})
    notifier = BackchannelNotifier(settings, keys, time.time, backoff=0.01, resolve=dns)
    with caplog.at_level(logging.WARNING, logger="idp.sso.backchannel"):
        await deliver_once(notifier, BackchannelTarget("app", "https://rp.example.com/bc"))
    assert dns.asked == ["rp.example.com"]  # asked once, refused, not retried
    shown = ipaddress.ip_address(address)
    assert f"refused: rp.example.com resolves to a non-public address {shown}" in caplog.text


@pytest.mark.parametrize(
    "uri", ["http://0x7f.1:9/bc", "http://0177.0.0.1:9/bc", "http://2130706433:9/bc"]
)
async def test_raw_ip_in_hex_octal_or_integer_is_refused_at_delivery_even_when_allowed(
    keys: KeyRingService, dev_settings: Settings, caplog: pytest.LogCaptureFixture, uri: str
) -> None:
    dns = FakeDns({})
    notifier = BackchannelNotifier(dev_settings, keys, time.time, backoff=0.01, resolve=dns)
    with caplog.at_level(logging.WARNING, logger="idp.sso.backchannel"):
        await deliver_once(notifier, BackchannelTarget("app", uri))
    assert dns.asked == []
    assert "non-standard form" in caplog.text


async def test_delivery_connects_to_the_address_that_was_checked(
    live_server: LiveServer,
    keys: KeyRingService,
    dev_settings: Settings,
    receivers: list[Receiver],
) -> None:
    """The name is resolved once, by the check; the request goes to that address.

    ``rp-pinned.localhost`` does not resolve on this machine, so the receiver can only be
    reached through the address the check saw; it still sees its own name in ``Host``.
    """
    receiver = _receiver(live_server, receivers, "app")
    dns = FakeDns({"rp-pinned.localhost": ["127.0.0.1"]})
    notifier = BackchannelNotifier(dev_settings, keys, time.time, backoff=0.01, resolve=dns)
    uri = f"http://rp-pinned.localhost:{receiver.port}/backchannel"
    await deliver_once(notifier, BackchannelTarget("app", uri))
    assert receiver.rejected == [] and len(receiver.accepted) == 1
    assert receiver.hosts == [f"rp-pinned.localhost:{receiver.port}"]
    assert dns.asked == ["rp-pinned.localhost"]


def make_tls_files(directory: Path, name: str) -> tuple[Path, Path, ssl.SSLContext]:
    """A throw-away CA and a certificate for ``name`` signed by it; and a context trusting it."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    trust = ssl.create_default_context(cadata=ca.public_bytes(serialization.Encoding.PEM).decode())
    return cert_file, key_file, trust


async def test_https_delivery_to_the_checked_address_verifies_the_uris_host_name(
    live_server: LiveServer,
    keys: KeyRingService,
    dev_settings: Settings,
    receivers: list[Receiver],
    tmp_path: Path,
) -> None:
    """Over TLS the certificate is checked against the URI's name, not the pinned address."""
    name = "rp-tls.localhost"
    cert_file, key_file, trust = make_tls_files(tmp_path, name)
    receiver = Receiver(live_server.url, "app").start(tls=(cert_file, key_file))
    receivers.append(receiver)
    dns = FakeDns({name: ["127.0.0.1"]})
    notifier = BackchannelNotifier(dev_settings, keys, time.time, resolve=dns, tls=trust)
    uri = f"https://{name}:{receiver.port}/backchannel"
    await deliver_once(notifier, BackchannelTarget("app", uri))
    assert receiver.rejected == [] and len(receiver.accepted) == 1
    assert receiver.hosts == [f"{name}:{receiver.port}"]
