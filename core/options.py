"""Config dataclass fields that also describe their command-line flag.

Configuration lives in dataclasses; the CLI builds its flags from these fields, so
each default is written once. A numeric field names its valid range, which the flag
checks when it is parsed (and `check_ranges` checks for configs built in code).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field, fields
from typing import Any


@dataclass(frozen=True)
class Range:
    low: float | None = None
    high: float | None = None
    low_open: bool = False  # the bound itself is not allowed
    high_open: bool = False

    def contains(self, value: float) -> bool:
        if not math.isfinite(value):
            return False
        if self.low is not None and (value < self.low or (self.low_open and value == self.low)):
            return False
        return not (self.high is not None and (value > self.high or (self.high_open and value == self.high)))

    def describe(self) -> str:
        low = "" if self.low is None else f"{'>' if self.low_open else '>='} {self.low:g}"
        high = "" if self.high is None else f"{'<' if self.high_open else '<='} {self.high:g}"
        if low and high:
            return (
                f"{'(' if self.low_open else '['}{self.low:g}, {self.high:g}{')' if self.high_open else ']'}"
            )
        return low or high or "any number"


def as_in(config: Any, name: str) -> Any:
    """A field with `config.<name>`'s default, help, range and flag: one option declared once and
    offered by several commands (RunConfig's backend for `serve`, OverlayConfig's gate for `bench`)."""
    other = {f.name: f for f in fields(config)}[name]
    return field(default=other.default, metadata=other.metadata)


def option(
    default: Any,
    help: str,
    *,
    flag: str | tuple[str, ...] | None = None,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    **argparse_kwargs: Any,
) -> Any:
    """A dataclass field with its flag's help text, valid range (numbers), choices, metavar, flag name."""
    meta: dict[str, Any] = {"help": help, "flag": flag, **argparse_kwargs}
    if low is not None or high is not None:
        meta["range"] = Range(low, high, low_open, high_open)
    if isinstance(default, list | dict):
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)


def flag_name(f: dataclasses.Field[Any]) -> str:
    flags = f.metadata.get("flag") or "--" + f.name.replace("_", "-")
    return flags if isinstance(flags, str) else flags[-1]


def out_of_range(config: Any) -> str | None:
    """'--flag VALUE: must be RANGE' for the first field (nested configs too) outside its range, or None."""
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            problem = out_of_range(value)
            if problem:
                return problem
            continue
        valid = f.metadata.get("range")
        if valid is None or value is None:
            continue
        for item in value if isinstance(value, list | tuple) else [value]:  # nargs: each value
            if not valid.contains(float(item)):
                return f"{flag_name(f)} {item}: must be {valid.describe()}"
    return None
