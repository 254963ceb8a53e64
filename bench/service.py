"""A throwaway token service: temp store, fresh key-encryption key, clients and keys.

The store is SQLite in a temp directory, or a fresh PostgreSQL database made for the run
and dropped after it. Everything else is set up through the ``idp`` admin command, as an
operator would.
"""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus, urlsplit, urlunsplit

import asyncpg

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = ROOT / ".venv" / "bin"
IDP = VENV_BIN / "idp"
ALGS = ("RS256", "ES256")
CLIENT_SCOPE = "api.read api.write"
COMMAND_TIMEOUT = 120


@dataclass(frozen=True)
class Client:
    """A confidential client registered for the benchmark."""

    alg: str
    client_id: str
    secret: str

    @property
    def basic_credentials(self) -> str:
        """The client_secret_basic token (RFC 6749 section 2.3.1: form-encoded, then base64)."""
        pair = f"{quote_plus(self.client_id)}:{quote_plus(self.secret)}"
        return base64.b64encode(pair.encode()).decode()


@dataclass(frozen=True)
class Fixture:
    """The service's environment and the clients it knows."""

    env: dict[str, str]
    clients: dict[str, Client]

    def with_issuer(self, issuer: str) -> dict[str, str]:
        """The IDP_* environment for a server whose issuer is ``issuer``."""
        return {**self.env, "IDP_ISSUER": issuer}


def run_command(
    argv: list[str],
    *,
    env: dict[str, str] | None = None,
    stdin: str | None = None,
    timeout: float = COMMAND_TIMEOUT,
) -> str:
    """Run ``argv`` to its end and return its output; raise with its errors if it fails."""
    result = subprocess.run(
        argv, env=env, input=stdin, capture_output=True, text=True, timeout=timeout, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed: {result.stderr.strip()}")
    return result.stdout


def _idp(env: dict[str, str], *args: str, stdin: str | None = None) -> str:
    return run_command([str(IDP), *args], env=env, stdin=stdin)


def _idp_json(env: dict[str, str], *args: str, stdin: str | None = None) -> Any:
    return json.loads(_idp(env, *args, "--json", stdin=stdin))


def prepare(workdir: Path, base_env: dict[str, str], database_url: str | None = None) -> Fixture:
    """Migrate the store, register one client per alg, make keys.

    The store is ``database_url`` (an empty database) or, by default, SQLite in ``workdir``.
    """
    env = {
        **base_env,
        "IDP_DATABASE_URL": database_url or f"sqlite:///{(workdir / 'idp.db').resolve()}",
        "IDP_ISSUER": "http://127.0.0.1:8000",
    }
    env["IDP_KEY_ENCRYPTION_KEY"] = _idp(env, "generate-kek").strip()
    _idp(env, "migrate")
    clients = {}
    for alg in ALGS:
        document = _idp_json(
            env,
            "clients",
            "create",
            "--name",
            f"bench-{alg.lower()}",
            "--scope",
            CLIENT_SCOPE,
            "--access-token-alg",
            alg,
        )
        clients[alg] = Client(alg, document["client_id"], document["client_secret"])
    _idp_json(env, "keys", "rotate")
    env.pop("IDP_ISSUER")
    return Fixture(env=env, clients=clients)


async def _postgres(admin_url: str, statement: str) -> None:
    connection = await asyncpg.connect(admin_url, timeout=COMMAND_TIMEOUT)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@contextmanager
def postgres_database(admin_url: str) -> Iterator[str]:
    """A new, empty PostgreSQL database on ``admin_url``'s server; dropped on the way out.

    Yields its URL (``admin_url`` with the database name replaced).
    """
    name = f"idp_bench_{secrets.token_hex(4)}"
    asyncio.run(_postgres(admin_url, f'CREATE DATABASE "{name}"'))
    try:
        yield urlunsplit(urlsplit(admin_url)._replace(path=f"/{name}"))
    finally:
        asyncio.run(_postgres(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
