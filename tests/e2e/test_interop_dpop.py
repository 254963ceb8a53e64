"""openid-client (the certified Node relying party) against the IdP with DPoP, on both stores.

Needs Node and the library, which scripts/test installs in ``tests/interop/openid-client``
(``npm ci`` from its lock file); the test is skipped without them. The server requires
nonces, so the client must also follow the use_dpop_nonce exchange (RFC 9449 section 8) on
its own.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import replace

import pytest

from tests.support.openid_client import SCRIPTS, needs_openid_client
from tests.support.server import LiveServer, free_port, register_client, start_server
from tests.support.tokens import AUDIENCE

pytestmark = [pytest.mark.slow, needs_openid_client]


@pytest.fixture
def nonce_server(live_server: LiveServer) -> Iterator[LiveServer]:
    port = free_port()
    issuer = f"http://127.0.0.1:{port}"
    settings = replace(live_server.settings, issuer=issuer, dpop_require_nonce=True)
    server = start_server(settings, port)
    try:
        yield server
    finally:
        server.stop()


def test_openid_client_gets_and_uses_a_dpop_bound_token(nonce_server: LiveServer) -> None:
    client_id, secret = register_client(
        nonce_server.settings,
        "node-client",
        grant_types=["client_credentials"],
        scope="read",
        audiences=[AUDIENCE],
        require_dpop=True,
    )
    done = subprocess.run(
        ["node", "dpop_client.mjs", nonce_server.url, client_id, secret],
        cwd=SCRIPTS,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    assert answer["token_type"].lower() == "dpop"
    assert answer["second_token_type"].lower() == "dpop"
    assert set(answer["cnf"]) == {"jkt"}
