"""openid-client 6 (Node), a certified relying-party library, driven from the tests.

Each script in tests/interop/openid-client reads one JSON document on stdin, a ``step`` and
its values, runs that step with the library, and prints its answer as one JSON document.
scripts/test installs the library there (npm ci from its lock file).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

SCRIPTS = Path(__file__).resolve().parents[1] / "interop" / "openid-client"

needs_openid_client = pytest.mark.skipif(
    shutil.which("node") is None or not (SCRIPTS / "node_modules" / "openid-client").is_dir(),
    reason="Node.js or tests/interop/openid-client/node_modules is missing (scripts/test "
    "installs it)",
)
"""Mark a module or a test that runs openid-client."""


def run_step(script: str, step: str, **values: Any) -> dict[str, Any]:
    """Run one ``step`` of ``script`` (a .mjs file in SCRIPTS); its JSON answer."""
    done = subprocess.run(
        ["node", script],
        cwd=SCRIPTS,
        input=json.dumps({"step": step, **values}),
        capture_output=True,
        text=True,
        timeout=120,
    )
    answer: dict[str, Any] = json.loads(done.stdout or "{}")
    assert done.returncode == 0, (answer, done.stderr)
    return answer
