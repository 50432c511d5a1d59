"""Would flip test-time augmentation quiet the false alarms on video? A clip's masks, each frame's
probability averaged over the frame and its two flips (`polyp-rt eval --tta`'s averaging) or not,
written as a record that `polyp-rt eval --record` scores with its gates replayed:

    python scripts/flip_tta_record.py CLIP OUT [--tta] [--model M] [--backend B] [--threads N]
    polyp-rt eval --record OUT --truth CLIP_masks --gates 3:2 --tau 0 0.1 0.5 1 2

Without --tta the masks are the live loop's (what `polyp-rt eval --video` scores), so the two
records differ only by the averaging. The live loop has no TTA: it would cost three inferences a
frame (docs/VIDEO_METRICS.md, "Would flip TTA help?").
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import av

from polyp_rt.core.errors import PolypRtError
from polyp_rt.engines.imaging import mask_at, preprocess
from polyp_rt.engines.registry import open_engine
from polyp_rt.realtime.config import DEMO_MODEL_INT8
from polyp_rt.train.evaluate import flip_averaged
from polyp_rt.train.synthetic import save_frame_mask


def write_record(clip: Path, out: Path, model: Path, backend: str, threads: int | None, tta: bool) -> int:
    """OUT/frames.jsonl and OUT/masks/NNNNNN.png for every frame of `clip`; the frame count."""
    (out / "masks").mkdir(parents=True, exist_ok=True)
    frames = 0
    with (
        open_engine(model, backend, "cpu", threads=threads) as engine,
        av.open(str(clip)) as container,
        open(out / "frames.jsonl", "w") as record,
    ):
        for frames, frame in enumerate(container.decode(video=0), start=1):
            rgb = frame.to_ndarray(format="rgb24")
            x = preprocess(rgb, engine.contract)[None]
            logits = flip_averaged(engine, x) if tta else engine.infer(x)
            mask = mask_at(logits[0], rgb.shape[0], rgb.shape[1], engine.contract.threshold)
            save_frame_mask(out / "masks", frames - 1, mask * 255)
            line = {"frame": frames - 1, "t": float(frame.time or 0.0), "area": float(mask.mean())}
            record.write(json.dumps(line) + "\n")
    return frames


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("clip", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--tta", action="store_true", help="average over the frame and its two flips")
    parser.add_argument("--model", type=Path, default=DEMO_MODEL_INT8)
    parser.add_argument("--backend", default="openvino")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    try:
        frames = write_record(args.clip, args.out, args.model, args.backend, args.threads, args.tta)
    except PolypRtError as error:  # a model that is missing or not a polyp-rt model
        raise SystemExit(f"error: {error}") from None
    except (av.error.FFmpegError, OSError) as error:
        raise SystemExit(f"error: {args.clip}: cannot read the clip ({error.strerror or error})") from None
    print(f"{args.out}: {frames} frames{' with flip TTA' if args.tta else ''}")


if __name__ == "__main__":
    main()
