"""The audit trail through the CLI, on both stores (the store's side: tests/store/test_audit.py)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from tests.support.commands import run_idp

pytestmark = pytest.mark.anyio


def test_cli_changes_appear_in_audit_list(env: dict[str, str], tmp_path: Path) -> None:
    run_idp(env, tmp_path, "migrate")
    run_idp(
        env,
        tmp_path,
        "clients",
        "create",
        "--name",
        "svc",
        "--grant-type",
        "client_credentials",
        "--json",
    )
    run_idp(
        env,
        tmp_path,
        "users",
        "create",
        "--username",
        "carol",
        "--password-stdin",
        stdin="s3cret-pass\n",
    )
    run_idp(env, tmp_path, "keys", "rotate", "--alg", "RS256")  # creates the rings
    run_idp(env, tmp_path, "keys", "rotate", "--alg", "RS256")
    documents = json.loads(run_idp(env, tmp_path, "audit", "list", "--json"))
    assert [d["action"] for d in documents[:2]] == ["client.create", "user.create"]
    assert all(d["actor"].startswith("cli") for d in documents)
    assert {"key.create", "key.activate"} <= {d["action"] for d in documents}
    assert all(d["at"].endswith("Z") and d["outcome"] == "success" for d in documents)
    assert "s3cret-pass" not in json.dumps(documents)
    assert hashlib.sha256(b"s3cret-pass").hexdigest() not in json.dumps(documents)

    text = run_idp(env, tmp_path, "audit", "list", "--since", "1h")
    assert "client.create" in text and "user.create" in text
    future = run_idp(env, tmp_path, "audit", "list", "--since", "2999-01-01T00:00:00Z")
    assert future.strip() == "no audit entries"
