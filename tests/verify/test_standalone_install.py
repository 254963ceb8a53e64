"""The verifier installs on its own: ``pip install ./packaging/verify`` in a fresh virtual
environment gives ``idp.verify`` and its three dependencies, nothing of the token service,
and verifies a token of a live IdP there."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.server import LiveServer
from tests.support.verify import AUDIENCE, idp_token

ROOT = Path(__file__).resolve().parents[2]
INSTALL_TIMEOUT = 600

CHECK = """
import json, sys
from idp.verify import ResourceMetadata, TokenVerifier
verifier = TokenVerifier(sys.argv[1], sys.argv[2])
token = verifier.verify(sys.argv[3], scopes=["read"])
metadata = ResourceMetadata.for_verifier(verifier)
missing = []
for name in ("starlette", "granian", "asyncpg", "argon2", "orjson", "idp.http", "idp.store"):
    try:
        __import__(name)
    except ImportError:
        missing.append(name)
found = {
    "client_id": token.client_id,
    "scopes": sorted(token.scopes),
    "missing": missing,
    "metadata": [metadata.url, metadata.document()["authorization_servers"]],
}
print(json.dumps(found))
"""


@pytest.fixture(scope="module")
def verifier_venv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh virtual environment with only the verifier installed, the documented way."""
    venv = tmp_path_factory.mktemp("verifier-venv")
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    installed = subprocess.run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            str(ROOT / "packaging" / "verify"),
        ],
        capture_output=True,
        text=True,
        timeout=INSTALL_TIMEOUT,
        check=False,
    )
    assert installed.returncode == 0, installed.stderr
    yield python


def test_the_verifier_alone_verifies_a_live_token(
    verifier_venv: Path, live_server: LiveServer
) -> None:
    token = idp_token(live_server, "ES256", scope="read write")
    done = subprocess.run(
        [str(verifier_venv), "-I", "-c", CHECK, live_server.url, AUDIENCE, token],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["scopes"] == ["read", "write"]
    assert result["client_id"]
    assert result["metadata"] == [
        AUDIENCE + "/.well-known/oauth-protected-resource",
        [live_server.url],
    ]
    assert result["missing"] == [
        "starlette",
        "granian",
        "asyncpg",
        "argon2",
        "orjson",
        "idp.http",
        "idp.store",
    ]


def test_the_verifier_alone_refuses_a_tampered_token(
    verifier_venv: Path, live_server: LiveServer
) -> None:
    token = idp_token(live_server, "RS256")
    head, payload, signature = token.split(".")
    tampered = f"{head}.{payload}.{signature[:-4]}AAAA"
    done = subprocess.run(
        [str(verifier_venv), "-I", "-c", CHECK, live_server.url, AUDIENCE, tampered],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode != 0
    assert "InvalidToken" in done.stderr or "signature" in done.stderr
