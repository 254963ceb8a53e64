"""Running the ``idp`` admin command for real, as ``python -m idp`` in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Result:
    """What one run of the command produced."""

    args: tuple[str | bytes, ...]
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def ok(self) -> Result:
        """Assert success (exit 0, no traceback) and return self."""
        assert self.returncode == 0, f"{self.args}: exit {self.returncode}\n{self.stderr}"
        assert "Traceback" not in self.stderr, self.stderr
        return self

    def json(self) -> Any:
        """The single JSON document on stdout (json.loads rejects anything after it)."""
        self.ok()
        return json.loads(self.stdout)

    def fails(self, code: int, *fragments: str) -> str:
        """Assert a clean failure: exit ``code``, one stderr line, empty stdout; return it."""
        assert self.returncode == code, (
            f"{self.args}: expected exit {code}, got {self.returncode}\n{self.output}"
        )
        assert "Traceback" not in self.stderr, self.stderr
        assert self.stdout == "", self.stdout
        lines = self.stderr.splitlines()
        assert len(lines) == 1 and lines[0].strip(), f"{self.args}: stderr {self.stderr!r}"
        for fragment in fragments:
            assert fragment in lines[0], f"{fragment!r} not in {lines[0]!r}"
        return lines[0]


def clean_environ() -> dict[str, str]:
    """This process's environment without any IDP_* setting inherited from outside."""
    return {k: v for k, v in os.environ.items() if not k.startswith("IDP_")}


@dataclass
class Idp:
    """Runs ``python -m idp`` with a fixed environment and working directory."""

    env: dict[str, str]
    cwd: Path

    def __call__(
        self,
        *args: str | bytes,
        stdin: str | bytes | None = None,
        unset: Iterable[str] = (),
        **overrides: str,
    ) -> Result:
        env = {**clean_environ(), **self.env, **overrides}
        for name in unset:
            env.pop(name, None)
        data = stdin.encode() if isinstance(stdin, str) else stdin
        completed = subprocess.run(
            [sys.executable, "-m", "idp", *args],
            cwd=self.cwd,
            env=env,
            input=data,
            stdin=subprocess.DEVNULL if data is None else None,
            capture_output=True,
            timeout=120,
            check=False,
        )
        return Result(
            tuple(args),
            completed.returncode,
            completed.stdout.decode("utf-8", "replace"),
            completed.stderr.decode("utf-8", "replace"),
        )

    def concurrently(
        self, *commands: Sequence[str | bytes], stdin: str | bytes | None = None
    ) -> list[Result]:
        """Run independent commands side by side (start-up dominates); results in order.

        ``stdin`` goes only to commands given ``--password-stdin``; the rest read /dev/null.
        """

        def one(args: Sequence[str | bytes]) -> Result:
            return self(*args, stdin=stdin if "--password-stdin" in args else None)

        with ThreadPoolExecutor(max_workers=4) as pool:
            return list(pool.map(one, commands))


def by_alg(documents: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Rotation results keyed by algorithm (each algorithm exactly once)."""
    result = {d["alg"]: d for d in documents}
    assert len(result) == len(documents)
    return result
