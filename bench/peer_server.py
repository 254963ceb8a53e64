"""The speed peer: oidc-provider (bench/peer), started pinned to one core like our server.

``bench/peer/run PORT`` installs oidc-provider and its own Node 22 from the npm registry on
first use (``run --install`` does only that), then serves it on 127.0.0.1:PORT: the
client_credentials grant with RFC 9068 JWT access tokens (one client per alg), JWKS,
discovery, and token introspection (RFC 7662) of opaque access tokens, the only kind it
introspects.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from bench import checks, servers, service

PEER_DIR = Path(__file__).resolve().parent / "peer"
RUN = PEER_DIR / "run"
SECRET = "peer-secret-0123456789abcdef"
CLIENTS = {"RS256": "peer-rs256", "ES256": "peer-es256"}
OPAQUE_CLIENT = "peer-opaque"
SCOPE = "api:read api:write"
TOKEN_PATH = "/token"
JWKS_PATH = "/jwks"
DISCOVERY_PATH = "/.well-known/openid-configuration"
INTROSPECTION_PATH = "/token/introspection"
INSTALL_TIMEOUT = 900
# Without a scope parameter oidc-provider leaves the scope claim out; asking for the client's
# scopes gives its tokens the same claims as ours.
TOKEN_BODY = urlencode({"grant_type": "client_credentials", "scope": SCOPE})


def basic(client_id: str) -> str:
    """client_secret_basic credentials for one of the peer's clients."""
    return base64.b64encode(f"{client_id}:{SECRET}".encode()).decode()


def install() -> None:
    """Install the peer (npm ci into its cache folder) unless it is installed already."""
    service.run_command([str(RUN), "--install"], timeout=INSTALL_TIMEOUT)


def argv(port: int) -> list[str]:
    """The command that serves the peer on 127.0.0.1:``port``."""
    return [str(RUN), str(port)]


def check_token(server: servers.Server, alg: str) -> str:
    """Get a token from the peer and verify it against the peer's JWKS (header, claims)."""
    jwks = checks.fetch(server.base_url + JWKS_PATH)
    url = server.base_url + TOKEN_PATH
    return checks.check_service_token(url, basic(CLIENTS[alg]), alg, jwks, TOKEN_BODY)


def opaque_token(server: servers.Server) -> str:
    """A fresh opaque access token of the peer's introspection client."""
    document = json.loads(
        checks.fetch(server.base_url + TOKEN_PATH, basic(OPAQUE_CLIENT), TOKEN_BODY)
    )
    token: str = document["access_token"]
    return token


def versions() -> dict[str, Any]:
    """The pinned versions of the peer's packages (from bench/peer/package.json)."""
    document = json.loads((PEER_DIR / "package.json").read_text())
    dependencies: dict[str, Any] = document["dependencies"]
    return dependencies
