"""The two steps of scripts/measure_video_metrics.sh that read `polyp-rt eval --json` output.

    python scripts/video_metrics_summary.py choose OUT/val.json   -> "N M", the gate to use
    python scripts/video_metrics_summary.py report OUT "gate N:M" -> markdown tables
    python scripts/video_metrics_summary.py plot OUT/test.json FILE.svg -> the operating points again
    python scripts/video_metrics_summary.py rule WORK BASELINE NAME... -> scripts/hard_negative_try.sh's verdict

The choice (validation clip only), in the order of the targets: the median time to first
detection at most 200 ms; the gate does its job, removing at least 80 % of the ungated masks'
false alarms shorter than 0.1 s (1-2 frames at 25 fps; GI Genius's frame study: hiding
activations of 6 frames or less removed 88 %) and never drawing a region of one or two frames
(min-frames at least 3: the CADe issue's flicker target); of those gates, the one that finds the
most lesions, then the one with the fewest false alarms of 0.5 s or more per minute, then the
smallest min-frames and hold. None: every mask is drawn ("1 0").
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

MAX_DELAY_MS, MIN_SHORT_REMOVED, SHORT_S = 200.0, 0.8, 0.1
MIN_FRAMES = 3  # a flicker of one or two frames is never drawn (tests/evaluation/test_flicker.py)


def load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())["scores"]


def per_minute(score: dict[str, Any], tau: float) -> float:
    return next(a["per_minute"] for a in score["false_alarms"] if a["tau_s"] == tau)


def gate_of(name: str) -> tuple[int, int]:
    if name == "ungated":
        return 1, 0
    n, m = name.removeprefix("gate ").split(":")
    return int(n), int(m)


def count(score: dict[str, Any], tau: float) -> int:
    return next(a["count"] for a in score["false_alarms"] if a["tau_s"] == tau)


def short_alarms(score: dict[str, Any]) -> int:
    """False alarms shorter than SHORT_S."""
    return count(score, 0.0) - count(score, SHORT_S)


def choose(path: Path) -> str:
    scores = load(path)
    short = short_alarms(scores["ungated"])
    fit = [
        name
        for name, s in scores.items()
        if name != "ungated"
        and s["first_detection_ms"] is not None
        and s["first_detection_ms"]["median"] <= MAX_DELAY_MS
        and gate_of(name)[0] >= MIN_FRAMES
        and short - short_alarms(s) >= MIN_SHORT_REMOVED * short - 1e-9  # exactly 80 % is 80 %
    ]
    if not fit:
        print(f"no gate on {path} meets the targets; keeping every mask", file=sys.stderr)
        return "1 0"
    best = min(fit, key=lambda n: (-scores[n]["lesions_found"], per_minute(scores[n], 0.5), *gate_of(n)))
    return "{} {}".format(*gate_of(best))


def cells(s: dict[str, Any], ungated: dict[str, Any]) -> list[str]:
    q = s["first_detection_ms"]
    delay = "-" if q is None else f"{q['median']:.0f} [{q['q1']:.0f}-{q['q3']:.0f}]"
    removed = 1 - short_alarms(s) / short_alarms(ungated) if short_alarms(ungated) else 0.0
    return [
        f"{s['lesions_found']}/{s['lesions']} ({s['lesion_sensitivity']:.3f})",
        delay,
        f"{s['lesion_coverage']:.3f}",
        f"{short_alarms(s)} ({removed:.0%} removed)",
        *(f"{count(s, tau)} ({per_minute(s, tau):.1f})" for tau in (0.0, 0.5, 1.0)),
        f"{s['switches_per_minute']:.0f}",
        f"{s['dice']:.3f}",
    ]


LESION_HEAD = (
    "| stream | lesions found | first detection, ms: median [IQR] | lesion time alerted | "
    "false alarms < 0.1 s | all (per min) | >= 0.5 s (per min) | >= 1 s (per min) | switches/min | "
    "Dice per frame |\n"
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
)


def alarms_table(out: Path, names: list[str]) -> list[str]:
    rows = [
        "| polyp-free stills | stream | minutes | false alarms < 0.1 s | all | per min | >= 0.5 s | per min | "
        ">= 1 s | per min | >= 2 s | per min | time in alarms >= 0.5 s | frames quiet |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    clips = {split: load(out / f"empty_{split}.json") for split in ("train", "val", "test")}
    for name in names:
        pooled: dict[float, list[float]] = {}
        minutes = quiet = frames = 0.0
        for split, scores in clips.items():
            s = scores[name]
            minutes += s["duration_s"] / 60
            quiet += s["frame_specificity"] * s["frames"]
            frames += s["frames"]
            counts = {a["tau_s"]: a for a in s["false_alarms"]}
            for tau, a in counts.items():
                pooled.setdefault(tau, [0, 0.0])
                pooled[tau][0] += a["count"]
                pooled[tau][1] += a["share_of_time"] * s["duration_s"]
            rows.append(
                _alarm_row(f"{split} ({s['frames'] // 25} stills)", name, s["duration_s"] / 60, counts, s)
            )
        stills = sum(scores[name]["frames"] for scores in clips.values()) // 25
        rows.append(
            f"| **all {stills}** | {name} | {minutes:.2f} | {pooled[0.0][0] - pooled[SHORT_S][0]:.0f} | "
            + " | ".join(f"{pooled[t][0]:.0f} | {pooled[t][0] / minutes:.1f}" for t in (0.0, 0.5, 1.0, 2.0))
            + f" | {pooled[0.5][1] / (minutes * 60):.1%} | {quiet / frames:.3f} |"
        )
    return rows


def _alarm_row(clip: str, name: str, minutes: float, counts: dict[float, Any], s: dict[str, Any]) -> str:
    parts = " | ".join(f"{counts[t]['count']} | {counts[t]['per_minute']:.1f}" for t in (0.0, 0.5, 1.0, 2.0))
    short = counts[0.0]["count"] - counts[SHORT_S]["count"]
    return f"| {clip} | {name} | {minutes:.2f} | {short} | {parts} | {counts[0.5]['share_of_time']:.1%} | {s['frame_specificity']:.3f} |"


def report(out: Path, chosen: str) -> str:
    lines = [
        "### Lesions: PolypGen test + Kvasir test as video (250 stills, 25 frames each, 10 dark between)",
        "",
        LESION_HEAD,
    ]
    lines += lesion_rows(load(out / "test.json"), chosen, "default")
    lines += ["", "### False alarms: PolypGen's 126 polyp-free stills as video", ""]
    lines += alarms_table(out, list(load(out / "empty_test.json")))
    lines += [
        "",
        "### The choice: PolypGen validation as video (150 stills, 10 dark frames between)",
        "",
        LESION_HEAD,
    ]
    lines += lesion_rows(load(out / "val.json"), chosen, "chosen")
    return "\n".join(lines) + "\n"


def lesion_rows(streams: dict, chosen: str, mark: str) -> list[str]:
    """One table row a stream, the chosen gate marked."""
    return [
        f"| {name}{f' ({mark})' if name == chosen else ''} | "
        + " | ".join(cells(s, streams["ungated"]))
        + " |"
        for name, s in streams.items()
    ]


DEFAULT_GATE = "gate 3:2"  # what scripts/hard_negative_try.sh scores through
BASELINE_VAL_DICE = 0.802  # the bundled model's best epoch, mean of the two val sets (samples/README.md)
RULE = (
    "ships when, against the baseline through the default gate: false alarms >= 0.5 s on the val clip "
    "and the polyp-free val stills at most 2/3 of its; at most 3 val lesions lost; median first "
    f"detection <= {MAX_DELAY_MS:.0f} ms; mean val mDice >= {BASELINE_VAL_DICE - 0.01:.3f}; at least 11 "
    "of 12 polyp-free val stills quiet; INT8 masks at Dice >= 0.98 of FP32"
)


def trial(work: Path, name: str) -> dict[str, Any]:
    """What the rule reads of one model in scripts/hard_negative_try.sh's WORK: its two clips'
    scores through the default gate and, for a fine-tune, its best epoch and INT8 check."""
    val, free = (load(work / "score" / f"{name}_{clip}.json")[DEFAULT_GATE] for clip in ("val", "empty_val"))
    row: dict[str, Any] = {
        "lesions": val["lesions_found"],
        "of": val["lesions"],
        "delay_ms": val["first_detection_ms"]["median"] if val["first_detection_ms"] else None,
        "alarms": (count(val, 0.5), count(free, 0.5)),
        "minutes": (val["duration_s"] + free["duration_s"]) / 60,
        "free_alerted": 1 - free["frame_specificity"],
        "val_dice": None,
        "int8": None,
    }
    metrics = work / name / "metrics.jsonl"
    if metrics.exists():
        epochs = [json.loads(line) for line in metrics.read_text().splitlines() if line.strip()]
        best = max(epochs, key=lambda e: e["val_dice"])
        sets = best["val_sets"].values()
        row.update(
            epoch=best["epoch"],
            val_dice=best["val_dice"],
            per_set=tuple(v["dice"] for v in sets),
            quiet=(sum(int(v["quiet"]) for v in sets), sum(int(v["polyp_free"]) for v in sets)),
            int8=json.loads((work / name / "quantize.json").read_text())["mask_dice"],
        )
    return row


def failures(row: dict[str, Any], base: dict[str, Any]) -> list[str]:
    checks = [
        (sum(row["alarms"]) <= 2 / 3 * sum(base["alarms"]) + 1e-9, "false alarms"),
        (base["lesions"] - row["lesions"] <= 3, "lesions"),
        (row["delay_ms"] is not None and row["delay_ms"] <= MAX_DELAY_MS, "first detection"),
        (row["val_dice"] is not None and row["val_dice"] >= BASELINE_VAL_DICE - 0.01 - 1e-9, "val Dice"),
        (row.get("quiet", (0, 0))[0] >= 11, "quiet stills"),
        (row["int8"] is not None and row["int8"] >= 0.98, "INT8"),
    ]
    return [what for ok, what in checks if not ok]


def rule(work: Path, baseline: str, names: list[str]) -> str:
    rows = {name: trial(work, name) for name in [baseline, *names]}
    base = rows[baseline]
    lines = [
        f"A model {RULE}.",
        "",
        "| model | best epoch | mean val mDice (per set) | polyp-free val stills quiet | val lesions | "
        "median first detection | false alarms >= 0.5 s: val clip + val stills (a minute) | "
        "val stills' frames alerted | INT8 vs FP32 | verdict |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for name, r in rows.items():
        a, b = r["alarms"]
        per_set = ", ".join(f"{d:.3f}" for d in r.get("per_set", ()))
        failed = failures(r, base)
        verdict = "baseline" if name == baseline else ("ships" if not failed else "no: " + ", ".join(failed))
        cells = [
            name,
            str(r.get("epoch", "-")),
            f"{r['val_dice']:.3f} ({per_set})"
            if r["val_dice"] is not None
            else f"{BASELINE_VAL_DICE:.3f} (its run)",
            "{} of {}".format(*r["quiet"]) if "quiet" in r else "-",
            f"{r['lesions']}/{r['of']}",
            "-" if r["delay_ms"] is None else f"{r['delay_ms']:.0f} ms",
            f"{a} + {b} = {a + b} ({(a + b) / r['minutes']:.1f})",
            f"{r['free_alerted']:.0%}",
            "-" if r["int8"] is None else f"{r['int8']:.3f}",
            verdict,
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


class Stored:
    """What the plot reads of a VideoScore, from `eval --json` output."""

    def __init__(self, score: dict[str, Any]) -> None:
        self.score = score
        self.sensitivity = score["lesion_sensitivity"]
        self.taus = tuple(a["tau_s"] for a in score["false_alarms"])

    def alarms_per_minute(self, tau: float) -> float:
        return per_minute(self.score, tau)


def main(argv: list[str]) -> int:
    try:
        return run(argv)
    except FileNotFoundError as error:  # a score or run file the measuring scripts did not write
        print(
            f"error: {error.filename}: not found (has its measuring script run to the end?)", file=sys.stderr
        )
        return 2


def run(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "choose":
        print(choose(Path(argv[1])))
        return 0
    if len(argv) == 3 and argv[0] == "plot":
        from polyp_rt.evaluation.plot import plot_operating_points

        scores = {name: Stored(s) for name, s in load(Path(argv[1])).items()}
        plot_operating_points(scores, Path(argv[2]), f"{Path(argv[1]).stem}: lesions against false alarms")
        return 0
    if len(argv) >= 3 and argv[0] == "rule":
        print(rule(Path(argv[1]), argv[2], argv[3:]), end="")
        return 0
    if len(argv) == 3 and argv[0] == "report":
        print(report(Path(argv[1]), argv[2]), end="")
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
