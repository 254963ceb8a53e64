"""Starting ``idp serve`` as an operator does: the issuer it advertises, a busy port, the
banner's next steps, and JSON logs. Real processes on one SQLite file each (the store plays
no part in what is tested here)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.support.processes import serving
from tests.support.server import free_port, make_env

pytestmark = pytest.mark.slow


def sqlite_env(cwd: Path, port: int, **extra: str) -> dict[str, str]:
    return make_env(f"sqlite:///{cwd}/idp.db", port, **extra)


def warnings_in(banner: str) -> list[str]:
    return [line for line in banner.splitlines() if line.startswith("idp: warning:")]


# -- the issuer follows the address served --------------------------------------------------


def test_without_idp_issuer_discovery_follows_the_port_served(tmp_path: Path) -> None:
    """Every URL discovery advertises names the port actually served, not 8000."""
    port = free_port()
    env = sqlite_env(tmp_path, port)
    del env["IDP_ISSUER"]
    url = f"http://127.0.0.1:{port}"
    with serving(env, tmp_path, port) as server:
        discovery = httpx.get(f"{url}/.well-known/openid-configuration", timeout=10).json()
        banner = server.stdout()
    assert discovery["issuer"] == url
    endpoints = [v for k, v in discovery.items() if k.endswith(("_endpoint", "_uri"))]
    assert endpoints and all(e.startswith(f"{url}/") for e in endpoints), endpoints
    assert f"idp: open {url}/.well-known/openid-configuration" in banner.splitlines()
    assert not [w for w in warnings_in(banner) if "does not match" in w]


def test_an_issuer_on_another_loopback_port_is_one_warning(tmp_path: Path) -> None:
    """IDP_ISSUER is obeyed, and the start-up says once that it does not reach this server."""
    port = free_port()
    issuer = f"http://localhost:{port + 1 if port < 65535 else port - 1}"
    env = sqlite_env(tmp_path, port, IDP_ISSUER=issuer)
    with serving(env, tmp_path, port) as server:
        discovery = httpx.get(
            f"http://127.0.0.1:{port}/.well-known/openid-configuration", timeout=10
        ).json()
        banner = server.stdout()
    assert discovery["issuer"] == issuer
    mismatches = [w for w in warnings_in(banner) if "does not match" in w]
    assert mismatches == [
        f"idp: warning: IDP_ISSUER {issuer} does not match the address served "
        f"(127.0.0.1:{port}): discovery and tokens name URLs that do not reach this server"
    ]


def test_a_matching_issuer_gives_no_warning(tmp_path: Path) -> None:
    port = free_port()
    env = sqlite_env(tmp_path, port, IDP_ISSUER=f"http://localhost:{port}")
    with serving(env, tmp_path, port) as server:
        banner = server.stdout()
    assert not [w for w in warnings_in(banner) if "does not match" in w]
