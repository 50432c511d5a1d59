"""Lay out `.typings/` so mypy can check polyp_rt against the TensorRT stubs.

Run from the repository root before mypy:

    python scripts/typings.py && mypy -p polyp_rt.engines -p polyp_rt.export

It does two things, both needed because of how things are installed:

* copies the `.pyi` files of the installed `tensorrt-stubs` distribution
  (`tensorrt/`, `tensorrt_bindings/`), which mypy ignores in site-packages (no
  py.typed marker), rewriting the few lines mypy cannot parse;
* makes `.typings/polyp_rt/<room>` symlinks to the repository's folders, since
  the editable install maps `polyp_rt.engines` -> `engines/` with an import hook
  that mypy cannot follow.

Install the stubs with `pip install --no-deps tensorrt-stubs` (they require the
`tensorrt` wheel, which only installs from NVIDIA's index).
"""

from __future__ import annotations

import importlib.metadata
import re
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TYPINGS = ROOT / ".typings"
STUB_DIST = "tensorrt-stubs"
STUB_PACKAGES = ("tensorrt", "tensorrt_bindings")
ROOMS = ("core", "engines", "train", "export", "realtime", "evaluation", "batch", "web", "cli")

# (pattern, replacement) pairs for signature and attribute lines of the stubs.
REWRITES: tuple[tuple[re.Pattern[str], str], ...] = (
    # unparsable: a parameter named after the keyword `in`
    (re.compile(r"\bin: "), "in_: "),
    # unparsable: a required parameter after defaulted ones (add_scale_nd's channel_axis)
    (re.compile(r"(= None, channel_axis: int)\)"), r"\1 = ...)"),
    # the module defines `bool: DataType` (trt.bool), which would turn every `-> bool` into Any
    (re.compile(r"(?<![\w.`])bool\b"), "builtins.bool"),
)
SIGNATURE = re.compile(r"^\s*def |^\s+[A-Za-z_]\w*: ")


def fix_stub(text: str) -> str:
    lines = []
    for line in text.splitlines(keepends=True):
        if SIGNATURE.match(line):
            for pattern, replacement in REWRITES:
                line = pattern.sub(replacement, line)
        lines.append(line)
    fixed = "".join(lines)
    if "builtins.bool" in fixed:
        fixed = fixed.replace(
            "from __future__ import annotations\n",
            "from __future__ import annotations\nimport builtins\n",
            1,
        )
    return fixed


def stub_files() -> list[tuple[Path, Path]]:
    """(installed file, path relative to .typings) for every stub the distribution ships."""
    try:
        files = importlib.metadata.files(STUB_DIST) or []
    except importlib.metadata.PackageNotFoundError:
        sys.exit(
            f"{STUB_DIST} is not installed: pip install --no-deps {STUB_DIST} "
            "(--no-deps: it requires the tensorrt wheel, which is not on PyPI's index)"
        )
    found = []
    for f in files:
        rel = Path(str(f))
        if rel.suffix == ".pyi" and rel.parts[0] in STUB_PACKAGES:
            found.append((Path(str(f.locate())), rel))
    if not found:
        sys.exit(f"{STUB_DIST} is installed but ships no tensorrt/*.pyi files; reinstall it")
    return found


def main() -> int:
    for package in (*STUB_PACKAGES, "polyp_rt"):
        target = TYPINGS / package
        if target.is_symlink() or target.is_file():
            target.unlink()
        elif target.exists():
            shutil.rmtree(target)
    for source, rel in stub_files():
        target = TYPINGS / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(fix_stub(source.read_text(encoding="utf-8")), encoding="utf-8")
    namespace = TYPINGS / "polyp_rt"
    namespace.mkdir(parents=True)
    for room in ROOMS:
        (namespace / room).symlink_to(Path("..", "..", room), target_is_directory=True)
    print(f"wrote {TYPINGS.relative_to(ROOT)}/: tensorrt stubs and polyp_rt -> {', '.join(ROOMS)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
