"""The Pareto table of docs/TRAINING.md: validation Dice of each candidate beside its INT8 time.

    python scripts/pareto_table.py runs/bench/pareto runs/pareto-timing/timing.json

Reads each candidate's metrics.jsonl (written by scripts/pareto_train.sh) at its best epoch by
mean validation Dice, and the OpenVINO INT8 model-only p50 of the same architecture from
scripts/pareto_timing.py; prints a Markdown table, fastest first, with the Pareto front in bold.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def best_epoch(metrics: Path) -> dict:
    rows = [json.loads(line) for line in metrics.read_text().splitlines() if line.strip()]
    return max(rows, key=lambda r: r["val_dice"]) | {"epochs": len(rows)}


def main() -> None:
    runs, timing_file = Path(sys.argv[1]), Path(sys.argv[2])
    timing = json.loads(timing_file.read_text())
    reference = timing.get("bundled (lite0-224-slim, trained)", {}).get("p50_ms")
    rows = []
    for run in sorted(runs.iterdir()):
        if not (run / "metrics.jsonl").is_file():
            continue
        arch = run.name.removesuffix("-free3")
        best = best_epoch(run / "metrics.jsonl")
        sets = best["val_sets"]
        free = sum(v["polyp_free"] for v in sets.values())
        quiet = sum(v["quiet"] for v in sets.values())
        ms = timing.get(arch, {}).get("p50_ms")
        rows.append((ms or 0.0, run.name, best, sets, int(quiet), int(free)))
    rows.sort()
    front, best_so_far = set(), -1.0
    for _ms, name, best, *_ in rows:
        if best["val_dice"] > best_so_far:
            front.add(name)
            best_so_far = best["val_dice"]
    names = list(rows[0][3]) if rows else []
    print(
        "| candidate | INT8 p50 ms | x bundled | best epoch | mean val Dice | "
        + " | ".join(f"val Dice {n}" for n in names)
        + " | polyp-free val left quiet |"
    )
    print("|---" * (6 + len(names)) + "|")
    for ms, name, best, sets, quiet, free in rows:
        ratio = f"{ms / reference:.2f}" if reference and ms else "-"
        label = f"**{name}**" if name in front else name
        per_set = " | ".join(f"{sets[n]['dice']:.3f}" for n in names)
        print(
            f"| {label} | {ms:.1f} | {ratio} | {best['epoch']} of {best['epochs']} | {best['val_dice']:.3f} | "
            f"{per_set} | {quiet} of {free} |"
        )


if __name__ == "__main__":
    main()
