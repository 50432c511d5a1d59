"""A `polyp-rt batch` video's record scored against its truth, without running the model again.

A video's result folder holds `frames.jsonl`, one line per frame::

    {"frame": 123, "t": 4.92, "area": 0.031, "max_prob": 0.97, "polyp": true, "alert_area": 0.031}

(`alert_area`, the share of the frame drawn after the alert gate, where the record has it), and, with
`batch --masks`, `masks/000123.png` (the model's masks, before the gate), and `stats.json` (which
names the video's sha256). With masks, alerts meet the truth pixel by pixel and gates can be
replayed over them; without, a frame's alert meets its truth frame by frame.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from polyp_rt.core.errors import DataError, InputFileError
from polyp_rt.core.files import json_lines
from polyp_rt.evaluation.config import MetricsConfig
from polyp_rt.evaluation.streams import GateFactory, StreamScorer, VideoEvaluation
from polyp_rt.evaluation.truth import TruthFolder
from polyp_rt.train.data import read_mask

RECORDED = "drawn (recorded)"
NO_MASKS = (
    "no masks/ beside the record (batch --masks writes them): alerts meet the truth frame by frame, "
    "not pixel by pixel, and no gate can be replayed"
)


def read_records(path: Path) -> list[dict[str, Any]]:
    """The frame records of a frames.jsonl file, checked: numbers where numbers belong."""
    if not path.is_file():
        raise InputFileError(f"{path}: frame record not found (a batch video folder holds frames.jsonl)")
    records = []
    try:
        for number, record in json_lines(path):
            try:
                for key in ("frame", "t", "area"):
                    if not math.isfinite(float(record[key])):
                        raise ValueError(f"{key} is not finite")
            except (ValueError, TypeError, KeyError) as exc:
                raise DataError(
                    f"{path}:{number}: not a frame record ({exc}); was the file cut short?"
                ) from None
            records.append(record)
    except ValueError as exc:  # a line that is not JSON
        raise DataError(str(exc)) from None
    if not records:
        raise DataError(f"{path}: holds no frame records")
    return records


def score_record(
    record: Path,
    truth: Path,
    *,
    min_area: float,
    metrics: MetricsConfig | None = None,
    gates: Mapping[str, GateFactory] | None = None,
    progress: Callable[[int], None] | None = None,
    name: str | None = None,
) -> VideoEvaluation:
    """Score `record` (a frames.jsonl, or the folder holding it) against the truth folder `truth`;
    `name`: the video's name, in the result and in messages (default: the record's folder).

    Streams: "ungated" (the masks, or the recorded areas), "drawn (recorded)" where the record has
    `alert_area`, and each of `gates` replayed over the masks (only with masks).
    """
    path = record / "frames.jsonl" if record.is_dir() else record
    records = read_records(path)
    folder = TruthFolder(truth)
    what = name or f"the record {path}"
    folder.expect_frames(len(records), what)
    for line, entry in enumerate(records):
        if int(entry["frame"]) != line:
            raise DataError(f"{path}: record {line + 1} is of frame {entry['frame']}, expected frame {line}")
    folder.expect_video(_video_sha256(path.parent), what)
    steps = [b["t"] - a["t"] for a, b in zip(records, records[1:], strict=False) if b["t"] > a["t"]]
    if steps:
        folder.expect_fps(1.0 / statistics.median(steps), what)
    masks = path.parent / "masks"
    has_masks = masks.is_dir()
    drawn = RECORDED if "alert_area" in records[0] else None
    stream = StreamScorer(
        folder, min_area, drawn=drawn, gates=gates if has_masks else None, video=name or path.parent.name
    )
    for entry in records:
        index = int(entry["frame"])
        prediction: Any = float(entry["area"])
        if has_masks:
            file = masks / f"{index:06d}.png"
            if not file.is_file():
                raise DataError(f"{masks}: no mask of frame {index} ({file.name}); is the folder complete?")
            prediction = read_mask(file)
        stream.add(
            index, float(entry["t"]), prediction, None if drawn is None else float(entry["alert_area"])
        )
        if progress is not None:
            progress(1)
    notes = () if has_masks else (NO_MASKS,)
    return stream.finish(metrics or MetricsConfig(), notes=notes)


def _video_sha256(folder: Path) -> str | None:
    """The video's sha256 as the batch's stats.json beside the record names it, if it does."""
    try:
        stats = json.loads((folder / "stats.json").read_text(encoding="utf-8"))
        return str(stats["batch"]["sha256"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
