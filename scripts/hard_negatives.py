"""Hard negatives: the frames of a polyp-free clip on which a model raised an alert, as training
images with empty masks (docs/TRAINING.md, "Hard negatives from video").

    polyp-rt --source CLIP --model MODEL --headless --masks-out MASKS
    python scripts/hard_negatives.py CLIP MASKS OUT [--every K]

CLIP must be polyp-free (`polyp-rt synth --video ... --from-images polypgen/train --pairs empty`:
the training split only, so validation and test stay unseen). A frame is a hard negative when the
model's mask covers at least the alert threshold (0.2 % of the frame); of each run of such frames
every K-th is kept (neighbouring frames of a pan are near copies). OUT gets images/ (JPEG) and
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


def mine(clip: Path, masks: Path, out: Path, every: int) -> tuple[int, int, int]:
    """(frames, frames alerted, frames kept)."""
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "masks").mkdir(parents=True, exist_ok=True)
    frames = alerted = kept = 0
    run = 0  # position in the current run of alerted frames
    with av.open(str(clip)) as video:
        for index, frame in enumerate(video.decode(video=0)):
            frames += 1
            path = masks / f"{index:06d}.png"
            mask = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
            if mask is None:
                raise SystemExit(f"error: {path}: no mask for frame {index} (was MASKS made from this clip?)")
            if (mask > 0).mean() < MIN_AREA:
                run = 0
                continue
            alerted += 1
            if run % every == 0:
                bgr = frame.to_ndarray(format="bgr24")
                name = f"{clip.stem}_{index:06d}"
                cv2.imwrite(str(out / "images" / f"{name}.jpg"), bgr, [cv2.IMWRITE_JPEG_QUALITY, 95])
                cv2.imwrite(str(out / "masks" / f"{name}.png"), np.zeros(bgr.shape[:2], np.uint8))
                kept += 1
            run += 1
    held = len(list(masks.glob("*.png")))
    if frames != held:
        raise SystemExit(
            f"error: {clip} has {frames} frames and {masks} {held} masks (made from another clip?)"
        )
    return frames, alerted, kept


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("clip", type=Path, help="a polyp-free clip")
    parser.add_argument("masks", type=Path, help="the model's masks of it (--masks-out)")
    parser.add_argument("out", type=Path)
    parser.add_argument("--every", type=int, default=4, help="keep every K-th frame of a run (default: 4)")
    args = parser.parse_args()
    frames, alerted, kept = mine(args.clip, args.masks, args.out, args.every)
    print(f"{args.clip}: {alerted} of {frames} frames alerted; {kept} kept in {args.out}")


if __name__ == "__main__":
    main()
