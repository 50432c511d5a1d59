"""What a file that torch would not load holds, found without running any of it.

`torch.load(weights_only=True)` refuses a pickle that names Python callables beyond tensors
and plain data, but its message changes between torch versions (2.14 calls a blocked module
"unsupported GLOBAL ... whose module ... is blocked", earlier ones "Unsupported global").
So the checkpoint loader does not read torch's words: it asks this module what the file is
(torch's zip archive, torch's older format, a plain pickle, or none of them) and which
callables its pickles name beyond plain data: for the zip format torch's own public answer
(`torch.serialization.get_unsafe_globals_in_checkpoint`), for the others the pickle's opcodes
read with `pickletools` (which parses them and runs nothing).
"""

from __future__ import annotations

import io
import pickletools
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

# Callables a torch checkpoint of tensors and plain data names (torch's own, and what
# torch.save writes for an OrderedDict state_dict); any other is code the file wants run.
PLAIN = ("torch.", "collections.OrderedDict", "_codecs.encode", "builtins.set", "__builtin__.set")
_STRINGS = {
    "SHORT_BINUNICODE",
    "BINUNICODE",
    "BINUNICODE8",
    "UNICODE",
    "STRING",
    "BINSTRING",
    "SHORT_BINSTRING",
}
_GETS = {"GET", "BINGET", "LONG_BINGET"}
_PUTS = {"PUT", "BINPUT", "LONG_BINPUT"}
_MAX_PICKLES = 5  # torch's older format: magic number, protocol, system info, the object, storage keys
MAGIC_NUMBER = 0x1950A86A20F9469CFC6C  # the first pickle of torch's older format holds this number


@dataclass(frozen=True)
class TorchFile:
    """What a file is (`kind`), and the callables its pickles name beyond tensors and plain data."""

    kind: str  # "a file in torch's zip format", ..., "a plain Python pickle", or "" (none of them)
    code: tuple[str, ...] = ()  # e.g. ("posix.system",)
    archive: bool = False  # a zip archive (torch's format is one, holding data.pkl)

    @property
    def is_pickle(self) -> bool:
        """Whether the file is (or holds) a whole pickle at all."""
        return bool(self.kind)


def inspect_torch_file(path: Path) -> TorchFile:
    """The kind of `path` and the callables beyond plain data its pickles name (nothing is run)."""
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            pickles = [n for n in archive.namelist() if n.endswith("data.pkl")]
            scanned = _scan(io.BytesIO(archive.read(pickles[0]))) if pickles else None
        if scanned is None:
            return TorchFile("", archive=True)
        return TorchFile("a file in torch's zip format", _unsafe_in_archive(path, scanned[0]), archive=True)
    with open(path, "rb") as f:
        scanned = _scan(f)
        if scanned is None:
            return TorchFile("")
        names, older = scanned
        for _ in range(_MAX_PICKLES - 1 if older else 0):  # the older format: several pickles in a row
            more = _scan(f)
            if more is None:
                break
            names += more[0]
    kind = "a file in torch's older format" if older else "a plain Python pickle"
    return TorchFile(kind, _beyond_plain(names))


def _unsafe_in_archive(path: Path, names: list[str]) -> tuple[str, ...]:
    """What torch's weights-only loader refuses in a zip-format file (torch says; else our scan)."""
    try:
        from torch.serialization import get_unsafe_globals_in_checkpoint

        return tuple(get_unsafe_globals_in_checkpoint(str(path)))
    except Exception:  # torch missing, or too old to have it, or a file it cannot read
        return _beyond_plain(names)


def _beyond_plain(names: list[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(n for n in names if not n.startswith(PLAIN)))


def _scan(stream: BinaryIO) -> tuple[list[str], bool] | None:
    """(the `module.name` callables one pickle names, whether it holds torch's magic number), or
    None where the bytes are not a whole pickle."""
    names: list[str] = []
    magic = False
    recent: list[Any] = []  # strings pushed lately (STACK_GLOBAL takes module and name from the stack)
    memo: dict[Any, Any] = {}
    try:
        for opcode, arg, _ in pickletools.genops(stream):
            name = opcode.name
            magic = magic or (isinstance(arg, int) and arg == MAGIC_NUMBER)
            if name in ("GLOBAL", "INST"):
                names.append(".".join(str(arg).split(" ", 1)))
            elif name == "STACK_GLOBAL" and len(recent) >= 2:
                names.append(f"{recent[-2]}.{recent[-1]}")
            elif name in _STRINGS:
                recent.append(arg)
            elif name in _GETS:
                recent.append(memo.get(arg))
            elif name in _PUTS or name == "MEMOIZE":
                memo[arg if name in _PUTS else len(memo)] = recent[-1] if recent else None
            elif name == "STOP":
                return names, magic
    except Exception:  # pickletools raises ValueError and others on bytes that are not a pickle
        return None
    return None
