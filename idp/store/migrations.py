"""Numbered SQL migrations, one folder per dialect, each applied once and recorded."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    """One numbered migration file."""

    version: int
    name: str
    sql: str


def migrations_root() -> Path:
    """Where the migration folders are: inside the installed package, else the source tree."""
    packaged = Path(__file__).resolve().parent.parent / "migrations"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent.parent / "migrations"


def load_migrations(dialect: str) -> list[Migration]:
    """Every migration of a dialect (``sqlite`` or ``postgresql``), in version order."""
    folder = migrations_root() / dialect
    found = []
    for path in sorted(folder.glob("*.sql")):
        match = _NAME.match(path.name)
        if match:
            found.append(Migration(int(match.group(1)), match.group(2), path.read_text()))
    if not found:
        raise RuntimeError(f"no migrations found in {folder}")
    return found
