"""The map of the house holds: each room imports only the rooms below it, and no module
imports itself back through others (top-level imports and the lazy ones inside functions)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ROOMS = ("core", "engines", "train", "export", "realtime", "evaluation", "batch", "cli")
ALLOWED = {
    "core": set(),
    "engines": {"core"},
    "train": {"core", "engines"},
    "export": {"core", "engines", "train"},
    "realtime": {"core", "engines", "train"},
    "evaluation": {"core", "train"},
    "batch": {"core", "engines", "realtime", "evaluation"},
    "cli": set(ROOMS),
}
# what the live loop and the video metrics may use of train/: torch-free modules only (the light
# install has no torch)
REALTIME_FROM_TRAIN = {"polyp_rt.train.scenes", "polyp_rt.train.metrics", "polyp_rt.train.data"}


def modules() -> dict[str, Path]:
    found = {}
    for room in ROOMS:
        for path in sorted((ROOT / room).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(("polyp_rt", *parts)).removesuffix(".__init__")
            found[name] = path
    return found


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """Our modules that `name` imports, anywhere in the file (lazy imports count)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(
                    package.split(".")[: len(package.split(".")) - node.level + 1] + [base]
                ).strip(".")
            targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        out |= {t for t in targets if t in known and t != name}
    return out


def room_of(module: str) -> str:
    return module.split(".")[1]


GRAPH = {name: imports_of(name, path, set(modules())) for name, path in modules().items()}


@pytest.mark.parametrize("module", sorted(GRAPH))
def test_a_room_imports_only_the_rooms_below_it(module):
    room = room_of(module)
    for target in GRAPH[module]:
        other = room_of(target)
        if other == room:
            continue
        assert other in ALLOWED[room], f"{module} imports {target}: {room}/ may not import {other}/"
        if room in ("realtime", "evaluation") and other == "train":
            assert target in REALTIME_FROM_TRAIN, f"{module} imports {target}, which needs torch"


def test_no_import_cycles():
    state: dict[str, str] = {}  # "open" while on the current path, "done" after

    def visit(module: str, path: list[str]) -> None:
        state[module] = "open"
        for target in sorted(GRAPH[module]):
            if state.get(target) == "open":
                cycle = path[path.index(target) :] + [target]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if target not in state:
                visit(target, [*path, target])
        state[module] = "done"

    for module in sorted(GRAPH):
        if module not in state:
            visit(module, [module])
