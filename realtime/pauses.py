"""Interpreter pauses on the live path: the GIL hand-over interval and the garbage collector.

Three Python threads share one interpreter. Python hands the GIL from a busy thread to a
waiting one every 5 ms by default, so a thread woken by a frame can wait that long behind
one doing Python work; and a full garbage collection walks every object torch, OpenCV and
the rest have made (hundreds of thousands), a pause of milliseconds at some random frame.
While a pipeline runs, the hand-over interval is the thread plan's, the objects made before
the first frame are frozen out of the collector's walks (`gc.freeze`), and every collection's
pause is timed for the statistics.
"""

from __future__ import annotations

import gc
import sys
import time
from types import TracebackType
from typing import Any


class InterpreterPauses:
    """A context for the run: sets the GIL interval, freezes what exists, times each collection."""

    def __init__(self, switch_interval_ms: float) -> None:
        self.switch_interval_ms = switch_interval_ms
        self.collections = [0, 0, 0]  # per generation
        self.pauses_ms: list[float] = []
        self._started_ns = 0
        self._previous_interval = sys.getswitchinterval()

    def __enter__(self) -> InterpreterPauses:
        self._previous_interval = sys.getswitchinterval()
        sys.setswitchinterval(self.switch_interval_ms / 1000)
        gc.collect()
        gc.freeze()
        gc.callbacks.append(self._on_collection)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        gc.callbacks.remove(self._on_collection)
        gc.unfreeze()
        sys.setswitchinterval(self._previous_interval)

    def _on_collection(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":  # collections never overlap: the collector holds the GIL
            self._started_ns = time.perf_counter_ns()
            return
        self.pauses_ms.append((time.perf_counter_ns() - self._started_ns) / 1e6)
        self.collections[info["generation"]] += 1

    def summary(self) -> dict[str, Any]:
        return {
            "switch_interval_ms": self.switch_interval_ms,
            "gc_collections": {f"generation {g}": n for g, n in enumerate(self.collections)},
            "gc_pause_total_ms": round(sum(self.pauses_ms), 3),
            "gc_pause_max_ms": round(max(self.pauses_ms, default=0.0), 3),
        }
