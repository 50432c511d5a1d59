"""The map of the house holds: each room imports only the rooms below it, and no module
imports itself back through others (top-level imports and the lazy ones inside functions)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ROOMS = ("core", "engines", "train", "export", "realtime", "evaluation", "batch", "web", "cli")
ALLOWED = {
    "core": set(),
    "engines": {"core"},
    "train": {"core", "engines"},
    "export": {"core", "engines", "train"},
    "realtime": {"core", "engines", "train"},
    "evaluation": {"core", "train"},
    "batch": {"core", "engines", "realtime", "evaluation"},
    "web": {"core", "engines", "realtime", "train"},
    "cli": set(ROOMS),
}
# what the live loop, the video metrics and the web views may use of train/: torch-free modules only (the
# light install has no torch)
LIGHT = ("realtime", "evaluation", "web")
SCENES = ("clip", "config", "fields", "polyps", "render", "tissue")
REALTIME_FROM_TRAIN = {
    "polyp_rt.train.scenes",
    *(f"polyp_rt.train.scenes.{part}" for part in SCENES),
    "polyp_rt.train.metrics",
    "polyp_rt.train.data",
}
TORCH = {"torch", "torchvision", "segmentation_models_pytorch", "timm"}


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
        if room in LIGHT and other == "train":
            assert target in REALTIME_FROM_TRAIN, f"{module} imports {target}, which needs torch"


def test_what_the_live_loop_reaches_of_train_needs_no_torch():
    """Every train module the live loop or the web views import, directly or through another, is a
    torch-free one."""
    reached: set[str] = set()
    todo = [module for module in GRAPH if room_of(module) in LIGHT]
    while todo:
        for target in GRAPH[todo.pop()]:
            if room_of(target) == "train" and target not in reached:
                reached.add(target)
                todo.append(target)
    assert reached <= REALTIME_FROM_TRAIN, f"the live loop reaches {sorted(reached - REALTIME_FROM_TRAIN)}"
    paths = modules()
    for module in sorted(reached):
        tree = ast.parse(paths[module].read_text())
        names = {
            alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names
        }
        names |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
        assert not {name.split(".")[0] for name in names} & TORCH, f"{module} imports torch"


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
