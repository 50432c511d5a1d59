"""Hard negatives: the frames of a polyp-free clip on which a model raised an alert, as training
images with empty masks (docs/TRAINING.md, "Hard negatives from video").

    polyp-rt --source CLIP --model MODEL --headless --masks-out MASKS
    python scripts/hard_negatives.py CLIP MASKS OUT [--every K] [--min-run N]

CLIP must be polyp-free (`polyp-rt synth --video ... --from-images polypgen/train --pairs empty`:
the training split only, so validation and test stay unseen). A frame is a hard negative when the
model's mask covers at least the alert threshold (0.2 % of the frame); of each run of such frames
every K-th is kept (neighbouring frames of a pan are near copies), from runs of at least N frames
(`--min-run 3`: only the alerts the default gate would draw, 3:2). OUT gets images/ (JPEG) and
masks/ (empty PNG), a layout `polyp-rt train --data` reads.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import av
import cv2
import numpy as np

from polyp_rt.realtime.config import OverlayConfig

MIN_AREA = OverlayConfig().min_area


def alerted_frames(masks: Path) -> list[bool]:
    """Whether each frame's mask raises an alert, from frame 0 up to the first missing mask."""
    flags: list[bool] = []
    while (path := masks / f"{len(flags):06d}.png").exists():
        mask = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        if mask is None:
            raise SystemExit(f"error: {path}: not a readable PNG")
        flags.append(bool((mask > 0).mean() >= MIN_AREA))
    return flags


def picked(flags: list[bool], every: int, min_run: int) -> set[int]:
    """Every K-th frame, from the first, of each run of alerted frames at least min_run long."""
    keep: set[int] = set()
    start = None
    for index, flag in enumerate([*flags, False]):
        if flag and start is None:
            start = index
        elif not flag and start is not None:
            if index - start >= min_run:
                keep.update(range(start, index, every))
            start = None
    return keep


def mine(clip: Path, masks: Path, out: Path, every: int, min_run: int = 1) -> tuple[int, int, int]:
    """(frames, frames alerted, frames kept)."""
    flags = alerted_frames(masks)
    keep = picked(flags, every, min_run)
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "masks").mkdir(parents=True, exist_ok=True)
    frames = 0
    with av.open(str(clip)) as video:
        for index, frame in enumerate(video.decode(video=0)):
            frames += 1
            if index >= len(flags):
                raise SystemExit(
                    f"error: {masks}: no mask for frame {index} (was MASKS made from this clip?)"
                )
            if index in keep:
                bgr = frame.to_ndarray(format="bgr24")
                name = f"{clip.stem}_{index:06d}"
                cv2.imwrite(str(out / "images" / f"{name}.jpg"), bgr, [cv2.IMWRITE_JPEG_QUALITY, 95])
                cv2.imwrite(str(out / "masks" / f"{name}.png"), np.zeros(bgr.shape[:2], np.uint8))
    if frames != len(flags):
        raise SystemExit(
            f"error: {clip} has {frames} frames and {masks} {len(flags)} masks (made from another clip?)"
        )
    return frames, sum(flags), len(keep)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("clip", type=Path, help="a polyp-free clip")
    parser.add_argument("masks", type=Path, help="the model's masks of it (--masks-out)")
    parser.add_argument("out", type=Path)
    parser.add_argument("--every", type=int, default=4, help="keep every K-th frame of a run (default: 4)")
    parser.add_argument(
        "--min-run",
        type=int,
        default=1,
        help="only runs of at least N alerted frames (3: those the default alert gate draws; default: 1)",
    )
    args = parser.parse_args()
    frames, alerted, kept = mine(args.clip, args.masks, args.out, args.every, args.min_run)
    print(f"{args.clip}: {alerted} of {frames} frames alerted; {kept} kept in {args.out}")


if __name__ == "__main__":
    main()
