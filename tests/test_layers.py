"""The package's floors: imports point downward only, and no module imports itself in a circle.

Read from the source (every ``import`` statement, those inside functions included; only
``if TYPE_CHECKING:`` blocks are left out, since they never run), so a new upward import
fails here with the two modules named.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "idp"

FLOORS: tuple[tuple[str, ...], ...] = (
    ("__main__",),
    ("cli",),
    ("http",),
    ("metrics",),
    ("admin",),
    ("sso",),
    ("oauth",),
    ("keyring",),
    ("store",),
    ("config", "clock", "identifiers", "logs", "sealing"),
    ("verify",),
)
"""Top to bottom: a module imports only from its own part or from floors below it."""

RANK = {part: len(FLOORS) - index for index, floor in enumerate(FLOORS) for part in floor}


def module_name(path: Path) -> str:
    relative = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = relative.parts[:-1] if relative.name == "__init__" else relative.parts
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def _type_checking_only(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def _imports(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    for node in ast.iter_child_nodes(tree):
        if _type_checking_only(node):
            continue
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        yield from _imports(node)


def imported(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The package's modules that ``name`` imports."""
    found: set[str] = set()
    for node in _imports(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name in known)
            continue
        base = node.module or ""
        if node.level:
            anchor = name.split(".")[
                : len(name.split(".")) - node.level + int(path.name == "__init__.py")
            ]
            base = ".".join([*anchor, *([base] if base else [])])
        for alias in node.names:
            candidate = f"{base}.{alias.name}"
            found.add(candidate if candidate in known else base)
    return {module for module in found if module in known and module != name}


def part_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


GRAPH = {name: imported(name, path, modules()) for name, path in modules().items()}


def test_every_part_of_the_package_has_a_floor() -> None:
    parts = {part_of(name) for name in GRAPH} - {"idp"}
    assert parts <= set(RANK), f"no floor for {sorted(parts - set(RANK))}; add it to FLOORS"


@pytest.mark.parametrize("name", sorted(GRAPH))
def test_imports_point_downward(name: str) -> None:
    mine = part_of(name)
    upward = [
        target
        for target in sorted(GRAPH[name])
        if part_of(target) != mine and part_of(target) != "idp"
        if RANK.get(part_of(target), 0) >= RANK.get(mine, 0)
    ]
    assert not upward, f"{name} imports from its own floor or above: {upward}"


def test_the_verifier_library_imports_nothing_else_of_the_package() -> None:
    outside = {
        (name, target)
        for name, targets in GRAPH.items()
        if part_of(name) == "verify"
        for target in targets
        if part_of(target) != "verify"
    }
    assert not outside


def test_no_import_cycles() -> None:
    """Depth-first search over the module graph; a back edge is a cycle."""
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(name: str, trail: list[str]) -> None:
        state[name] = 1
        for target in sorted(GRAPH[name]):
            if state.get(target) == 1:
                cycles.append([*trail[trail.index(target) :], target])
            elif target not in state:
                visit(target, [*trail, target])
        state[name] = 2

    for name in sorted(GRAPH):
        if name not in state:
            visit(name, [name])
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(cycle) for cycle in cycles)
