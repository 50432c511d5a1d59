"""Config dataclass fields that also describe their command-line flag.

Configuration lives in dataclasses; the CLI builds its flags from these fields, so
each default is written once.
"""

from __future__ import annotations

from dataclasses import field
from typing import Any


def option(
    default: Any, help: str, *, flag: str | tuple[str, ...] | None = None, **argparse_kwargs: Any
) -> Any:
    """A dataclass field with its flag's help text (and optional choices, metavar, flag name)."""
    meta = {"help": help, "flag": flag, **argparse_kwargs}
    if isinstance(default, list | dict):
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)
