"""Would a confidence rule stop the false alarms? Each region a model marks on PolypGen's stills,
with its size and probability, and what a rule "alert only where the region's mean probability
reaches P" would keep.

    python scripts/region_confidence.py MODEL ../shared/data/polypgen [--out regions.json]

Every still of val and test and the polyp-free stills of train, one inference each at the
still's own resolution (as `polyp-rt eval`); a region is 8-connected, at least 0.2 % of the
frame (the alert threshold). A region is *true* when it overlaps the still's polyp mask. For
each P it prints the validation polyps still found (a true region of mean probability >= P) and
the polyp-free stills still alarmed on, per split: the numbers to choose P by, on validation.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np

from polyp_rt.engines.imaging import preprocess, sigmoid
from polyp_rt.engines.registry import open_engine
from polyp_rt.realtime.config import OverlayConfig
from polyp_rt.train.data import read_mask, read_rgb, scan_folder

MIN_AREA = OverlayConfig().min_area  # the alert threshold (0.2 % of the frame), as the live loop has it
LEVELS = (0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9)


def regions(prob: np.ndarray, truth: np.ndarray) -> list[dict]:
    count, labels, _, _ = cv2.connectedComponentsWithStats((prob > 0.5).astype(np.uint8), connectivity=8)
    found = []
    for i in range(1, count):
        region = labels == i
        if region.mean() >= MIN_AREA:
            found.append(
                {
                    "area": float(region.mean()),
                    "peak": float(prob[region].max()),
                    "mean": float(prob[region].mean()),
                    "true": bool((region & truth).any()),
                }
            )
    return found


def stills(model: Path, data: Path) -> list[dict]:
    out = []
    with open_engine(model, device="cpu") as engine:
        for split in ("train", "val", "test"):
            for pair in scan_folder(data / split).pairs:
                truth = read_mask(pair.mask) > 0
                if split == "train" and truth.any():
                    continue  # train: the polyp-free stills only (the model saw the rest)
                rgb = read_rgb(pair.image)
                logits = engine.infer(preprocess(rgb, engine.contract)[None])[0, 0]
                prob = cv2.resize(
                    sigmoid(logits), (rgb.shape[1], rgb.shape[0]), interpolation=cv2.INTER_LINEAR
                )
                out.append(
                    {
                        "split": split,
                        "image": pair.image.name,
                        "polyp": bool(truth.any()),
                        "regions": regions(prob, truth),
                    }
                )
    return out


def table(found: list[dict]) -> str:
    def count(split: str, polyp: bool, level: float) -> int:
        """Stills of `split` with a region kept at `level`: a true one on polyp stills, any on the others."""
        return sum(
            any(r["mean"] >= level and (r["true"] or not polyp) for r in s["regions"])
            for s in found
            if s["split"] == split and s["polyp"] == polyp
        )

    free = {
        split: sum(1 for s in found if s["split"] == split and not s["polyp"])
        for split in ("train", "val", "test")
    }
    polyps = sum(1 for s in found if s["split"] == "val" and s["polyp"])
    lines = [
        f"| mean probability >= | val polyps found (of {polyps}) | polyp-free stills alarmed: "
        f"train (of {free['train']}) | val (of {free['val']}) | test (of {free['test']}) |",
        "|---:|---:|---:|---:|---:|",
    ]
    for level in LEVELS:
        true = count("val", True, level)
        alarmed = [count(split, False, level) for split in ("train", "val", "test")]
        lines.append(f"| {level:.2f} | {true} | " + " | ".join(map(str, alarmed)) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("data", type=Path, help="PolypGen (train/val/test)")
    parser.add_argument("--out", type=Path, help="every region, as JSON")
    args = parser.parse_args()
    found = stills(args.model, args.data)
    if args.out:
        args.out.write_text(json.dumps(found))
    false = [r for s in found for r in s["regions"] if not r["true"]]
    true = [r for s in found for r in s["regions"] if r["true"]]
    for name, group in (("true", true), ("false", false)):
        means = np.array([r["mean"] for r in group])
        peaks = np.array([r["peak"] for r in group])
        print(
            f"{name} regions: {len(group)}; mean probability p10/p50 {np.percentile(means, 10):.3f}/"
            f"{np.percentile(means, 50):.3f}, peak p10/p50 {np.percentile(peaks, 10):.3f}/{np.percentile(peaks, 50):.3f}"
        )
    print(table(found))


if __name__ == "__main__":
    main()
