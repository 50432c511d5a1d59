"""The passthrough display under an inference fault, measured (docs/LIVE.md, docs/BENCHMARKS.md).

Runs `polyp-rt run`'s own pipeline (compose()) on a live source with a recording, the engine
wrapped so that one inference stalls for `--stall-s` seconds (then the model recovers), or so that
every inference takes `--slow-ms` longer (a model far too slow for the source). Prints one JSON
object: the frames in, shown and recorded, the drops, the two delays and the stall events.

    python scripts/passthrough_faults.py --stall-at 150 --stall-s 2 --frames 600
    python scripts/passthrough_faults.py --slow-ms 300 --frames 300
    python scripts/passthrough_faults.py --frames 600            # the same run without a fault

The fault is a sleep inside the model's call, as a runtime that hangs would be.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np


class FaultyEngine:
    """A real engine whose `stall_at`-th inference first sleeps `stall_s`, and every one `slow_s`."""

    def __init__(self, engine: Any, stall_at: int, stall_s: float, slow_s: float) -> None:
        self.inner, self.calls = engine, 0
        self.stall_at, self.stall_s, self.slow_s = stall_at, stall_s, slow_s

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def infer(self, batch: np.ndarray) -> np.ndarray:
        self.calls += 1
        pause = self.slow_s + (self.stall_s if self.calls == self.stall_at else 0.0)
        if pause:
            time.sleep(pause)  # the fault itself
        return self.inner.infer(batch)


def main() -> None:
    from polyp_rt.realtime.compose import compose, open_run_engine
    from polyp_rt.realtime.config import DEMO_MODEL_INT8, RunConfig

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", default="synthetic:640x480@30?loop=60")
    parser.add_argument("--model", type=Path, default=DEMO_MODEL_INT8)
    parser.add_argument("--display", default="passthrough", choices=("synced", "passthrough"))
    parser.add_argument("--frames", type=int, default=600)
    parser.add_argument("--stall-at", type=int, default=0, help="the inference that stalls (0: none)")
    parser.add_argument("--stall-s", type=float, default=2.0)
    parser.add_argument("--slow-ms", type=float, default=0.0, help="added to every inference")
    parser.add_argument("--record", type=Path, help="the recording (default: a temporary file)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        record = args.record or Path(tmp) / "faults.mp4"
        config = RunConfig(
            source=args.source,
            model=args.model,
            headless=True,
            max_frames=args.frames,
            record=record,
            display=args.display,
        )
        with open_run_engine(config) as engine:
            faulty = FaultyEngine(engine, args.stall_at, args.stall_s, args.slow_ms / 1000)
            with compose(config, faulty) as pipeline:  # type: ignore[arg-type]
                outcome = pipeline.run()
                recorded = pipeline.sinks[0].summary()["recording"]["frames"]
        if outcome.error is not None:
            raise outcome.error
        decoded = decoded_frames(record)
    s = outcome.stats.summary()
    keys = ("p50", "p90", "p99", "max")
    print(
        json.dumps(
            {
                "source": args.source,
                "model": args.model.name,
                "fault": {"stall_at": args.stall_at, "stall_s": args.stall_s, "slow_ms": args.slow_ms},
                "modes": s["modes"],
                "frames_in": s["frames_in"],
                "frames_shown": s["frames_processed"],
                "frames_recorded": recorded,
                "frames_decoded_from_recording": decoded,
                "frames_inferred": s["frames_inferred"],
                "frames_unannotated": s["frames_unannotated"],
                "dropped": s["dropped"],
                "fps": round(s["fps"], 2),
                "video_delay_ms": {k: round(s["video_delay_ms"][k], 2) for k in keys},
                "annotation_delay_ms": {k: round(s["annotation_delay_ms"][k], 1) for k in keys},
                "events": s["events"],
            },
            indent=1,
        )
    )


def decoded_frames(path: Path) -> int:
    import av

    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(container.streams.video[0]))


if __name__ == "__main__":
    main()
