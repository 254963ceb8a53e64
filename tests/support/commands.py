"""Running ``python -m idp`` from tests that only need its output."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.support.cli import clean_environ


def run_idp(env: dict[str, str], cwd: Path, *args: str, stdin: str | None = None) -> Any:
    completed = subprocess.run(
        [sys.executable, "-m", "idp", *args],
        cwd=cwd,
        env={**clean_environ(), **env},
        input=(stdin or "").encode(),
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr.decode()
    return completed.stdout.decode()
