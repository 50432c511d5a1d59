"""docs/USAGE.md, generated from the config dataclasses the flags are built from.

    python -m polyp_rt.cli.usage > docs/USAGE.md

A test checks that the committed page is what this prints, so the page never drifts from
the flags.
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Any

from polyp_rt.cli.main import COMMANDS, EPILOG, load
from polyp_rt.core.options import flag_name

HEADER = """\
# Every command and flag

Generated from the configuration dataclasses that `polyp-rt` builds its flags from
(`python -m polyp_rt.cli.usage > docs/USAGE.md`; a test keeps it current). The README is
the guide; this page is the reference. `polyp-rt COMMAND --help` prints the same.
Every command also takes `-v`/`--verbose` (more log output) and `--debug` (tracebacks).

"""


def _fields(config_cls: type) -> list[tuple[dataclasses.Field[Any], Any]]:
    """The flag fields of a config, nested configs flattened in place, with their types."""
    hints = typing.get_type_hints(config_cls)
    out: list[tuple[dataclasses.Field[Any], Any]] = []
    for f in dataclasses.fields(config_cls):
        if dataclasses.is_dataclass(hints[f.name]):
            out += _fields(hints[f.name])
        else:
            out.append((f, hints[f.name]))
    return out


def _default(f: dataclasses.Field[Any]) -> str:
    value = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc,operator]
    if value is None or value == [] or value is False:
        return ""
    if value is True:
        return "on (`--no-" + flag_name(f).removeprefix("--") + "` turns it off)"
    text = str(value)
    if "/samples/" in text:  # a bundled file: its name, not this machine's path
        text = "samples/" + text.rsplit("/samples/", 1)[1]
    return f"`{text}`"


def _valid(f: dataclasses.Field[Any], kind: Any) -> str:
    if f.metadata.get("choices"):
        return ", ".join(f"`{c}`" for c in f.metadata["choices"])
    if f.metadata.get("range") is not None:
        return f.metadata["range"].describe()
    return "flag" if kind is bool else ""


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def command_section(name: str) -> str:
    summary, config, _handler = COMMANDS[name]
    lines = [f"## `polyp-rt {name}`", "", summary[0].upper() + summary[1:] + ".", ""]
    lines += ["| flag | default | valid | what |", "|---|---|---|---|"]
    for f, kind in _fields(load(config)):
        flag = flag_name(f)
        metavar = f.metadata.get("metavar")
        shown = f"`{flag} {metavar}`" if metavar and kind is not bool else f"`{flag}`"
        if f.metadata.get("action") == "append":
            shown += " (repeatable)"
        row = (shown, _default(f), _valid(f, kind), _cell(str(f.metadata.get("help", ""))))
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


def usage_markdown() -> str:
    """The whole page: one section per command, in the order `polyp-rt --help` lists them."""
    sections = [command_section(name) for name in COMMANDS]
    return HEADER + "\n".join(sections) + "\n" + EPILOG.split(". ", 1)[1] + "\n"


if __name__ == "__main__":
    print(usage_markdown(), end="")
