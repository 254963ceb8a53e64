"""``idp audit list --action`` as a subprocess on both stores: security events come through
the CLI, one action or a family of them, with their client, address and count."""

from __future__ import annotations

import json
from pathlib import Path

from idp.store.base import Store
from idp.store.security_events import AuditedEvents, SecurityEvent
from tests.support.clocks import FakeClock
from tests.support.commands import run_idp
from tests.support.server import with_store


def test_audit_list_filters_security_events_by_action(
    env: dict[str, str], database_url: str, tmp_path: Path
) -> None:
    run_idp(env, tmp_path, "migrate")

    async def record(store: Store) -> None:
        events = AuditedEvents(store, FakeClock())
        failed = SecurityEvent(
            "signin.password", "failure", "alice", "u1", "web", "192.0.2.9", {}, True
        )
        for _ in range(3):
            await events.record(failed)
        await events.record(SecurityEvent("consent.grant", "success", "alice", "u1", "web"))

    with_store(database_url, record)
    documents = json.loads(
        run_idp(env, tmp_path, "audit", "list", "--action", "signin.*", "--json")
    )
    assert [(d["action"], d["outcome"], d["count"]) for d in documents] == [
        ("signin.password", "failure", 3)
    ]
    assert documents[0]["subject"] == "u1"
    assert documents[0]["detail"] == {"client": "web", "address": "192.0.2.9"}
    text = run_idp(env, tmp_path, "audit", "list", "--action", "consent.grant")
    assert "consent.grant" in text and "signin.password" not in text


def test_audit_list_refuses_a_malformed_action(env: dict[str, str], tmp_path: Path) -> None:
    import subprocess
    import sys

    from tests.support.cli import clean_environ

    done = subprocess.run(
        [sys.executable, "-m", "idp", "audit", "list", "--action", "x; drop"],
        cwd=tmp_path,
        env={**clean_environ(), **env},
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2 and b"expected an action" in done.stderr
