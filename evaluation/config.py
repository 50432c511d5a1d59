"""What the video metrics take besides the predictions and the truth (light: no heavy imports)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from polyp_rt.core.errors import PolypRtError
from polyp_rt.core.options import option

UNGATED = "ungated"  # the stream of the model's masks as they are, before any gate

GATE = re.compile(r"^(\d+):(\d+)$")


def parse_gates(texts: list[str], flag: str = "--gates") -> list[tuple[int, int]]:
    """`MIN_FRAMES:HOLD` texts (`3:2`) as (min_frames, hold) pairs, in order, without repeats."""
    gates: list[tuple[int, int]] = []
    for text in texts:
        found = GATE.match(text.strip())
        if not found or int(found[1]) < 1:
            raise PolypRtError(f"{flag} {text!r}: write MIN_FRAMES:HOLD with MIN_FRAMES >= 1, e.g. 3:2")
        gate = (int(found[1]), int(found[2]))
        if gate not in gates:
            gates.append(gate)
    return gates


@dataclass
class MetricsConfig:
    lesion_gap: int = option(
        10,
        "frames with a polyp separated by at most this many polyp-free frames belong to one lesion "
        "(unless the truth folder's truth.json lists the lesions)",
        low=0,
        high=100_000,
        metavar="N",
    )
    tau: list[float] = option(
        [0.0, 0.5, 1.0, 2.0],
        "false alarms are counted among alerts lasting at least this long, in seconds (each value a row)",
        nargs="+",
        metavar="S",
        low=0,
        high=3600,
    )

    def taus(self) -> tuple[float, ...]:
        """The durations, checked and sorted."""
        bad = [t for t in self.tau if not (math.isfinite(t) and t >= 0)]
        if bad or not self.tau:
            raise PolypRtError(f"--tau {bad[0] if bad else ''}: each value must be a number of seconds >= 0")
        return tuple(sorted(set(self.tau)))
