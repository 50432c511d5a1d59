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

from polyp_rt.core.errors import PolypRtError
from polyp_rt.evaluation.scorer import runs_of
from polyp_rt.evaluation.truth import TruthFolder
from polyp_rt.realtime.config import OverlayConfig

MIN_AREA = OverlayConfig().min_area


def picked(masks: Path, every: int, min_run: int) -> tuple[int, int, set[int]]:
    """(masks, frames alerted, the frames to keep): every K-th frame, from the first, of each run
    of alerted frames at least min_run long."""
    truth = TruthFolder(masks)  # 000000.png on, no gaps
    flags = [float(truth.mask(i).mean()) >= MIN_AREA for i in range(truth.frames)]
    keep = {i for run in runs_of(flags) if len(run) >= min_run for i in run[::every]}
    return truth.frames, sum(flags), keep


def mine(clip: Path, masks: Path, out: Path, every: int, min_run: int = 1) -> tuple[int, int, int]:
    """(frames, frames alerted, frames kept)."""
    held, alerted, keep = picked(masks, every, min_run)
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "masks").mkdir(parents=True, exist_ok=True)
    frames = 0
    with av.open(str(clip)) as video:
        for index, frame in enumerate(video.decode(video=0)):
            frames += 1
            if index >= held:
                raise SystemExit(
                    f"error: {masks}: no mask for frame {index} (was MASKS made from this clip?)"
                )
            if index in keep:
                bgr = frame.to_ndarray(format="bgr24")
                name = f"{clip.stem}_{index:06d}"
                cv2.imwrite(str(out / "images" / f"{name}.jpg"), bgr, [cv2.IMWRITE_JPEG_QUALITY, 95])
                cv2.imwrite(str(out / "masks" / f"{name}.png"), np.zeros(bgr.shape[:2], np.uint8))
    if frames != held:
        raise SystemExit(
            f"error: {clip} has {frames} frames and {masks} {held} masks (made from another clip?)"
        )
    return frames, alerted, len(keep)


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
    try:
        frames, alerted, kept = mine(args.clip, args.masks, args.out, args.every, args.min_run)
    except PolypRtError as error:  # a masks folder with gaps, a mask of another size
        raise SystemExit(f"error: {error}") from None
    print(f"{args.clip}: {alerted} of {frames} frames alerted; {kept} kept in {args.out}")


if __name__ == "__main__":
    main()
