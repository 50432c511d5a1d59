"""scripts/video_metrics_summary.py: the rule that chose the default alert gate (`choose`) and the
one that judges a hard-negative fine-tune (`rule`), on `eval --json`-shaped scores written by hand;
each expected answer is worked out in the comments."""

from __future__ import annotations

import json
from pathlib import Path

from tests.scripts import load_script


def stream(lesions, median_ms, alarms, *, of=137, seconds=209.6, specificity=0.9):
    """A score as `eval --json` writes it, with the fields the script reads. alarms: the counts
    lasting at least 0, 0.1 and 0.5 s; per minute over `seconds`."""
    minutes = seconds / 60
    return {
        "lesions_found": lesions,
        "lesions": of,
        "first_detection_ms": None
        if median_ms is None
        else {"q1": median_ms, "median": median_ms, "q3": median_ms},
        "false_alarms": [
            {"tau_s": tau, "count": n, "per_minute": n / minutes, "share_of_time": 0.0}
            for tau, n in zip((0.0, 0.1, 0.5), alarms, strict=True)
        ],
        "duration_s": seconds,
        "frame_specificity": specificity,
    }


def test_choose_takes_the_most_lesions_then_the_fewest_alarms_among_gates_that_do_their_job(tmp_path):
    # ungated: 50 alarms, 10 of them 0.1 s or longer, so 40 short ones; a gate must leave <= 8
    scores = {
        "ungated": stream(32, 0, (50, 10, 6)),
        "gate 2:2": stream(31, 40, (12, 8, 4)),  # short 4: 90 % removed, but min-frames 2 < 3: out
        "gate 3:0": stream(30, 80, (20, 5, 3)),  # short 15: 62.5 % removed: out
        "gate 3:2": stream(29, 80, (13, 5, 3)),  # short 8: exactly 80 %: in; 29 lesions, 3 alarms >= 0.5 s
        "gate 4:2": stream(29, 120, (8, 4, 2)),  # short 4: in; 29 lesions, 2 alarms: fewer than 3:2's
        "gate 5:2": stream(28, 160, (5, 3, 1)),  # short 2: in; one lesion fewer: loses to 4:2
        "gate 8:0": stream(31, 280, (3, 2, 1)),  # median 280 ms > 200: out
    }
    path = tmp_path / "val.json"
    path.write_text(json.dumps({"scores": scores}))
    assert load_script("video_metrics_summary").choose(path) == "4 2"

    del scores["gate 4:2"], scores["gate 5:2"]  # 3:2 is left alone, at exactly 80 %
    path.write_text(json.dumps({"scores": scores}))
    assert load_script("video_metrics_summary").choose(path) == "3 2"

    del scores["gate 3:2"]  # nothing fits: every mask is drawn
    path.write_text(json.dumps({"scores": scores}))
    assert load_script("video_metrics_summary").choose(path) == "1 0"


def write_trial(work: Path, name: str, val: dict, free: dict, epochs=None, int8=None) -> None:
    (work / "score").mkdir(parents=True, exist_ok=True)
    for clip, score in (("val", val), ("empty_val", free)):
        (work / "score" / f"{name}_{clip}.json").write_text(json.dumps({"scores": {"gate 3:2": score}}))
    if epochs is not None:
        (work / name).mkdir()
        (work / name / "metrics.jsonl").write_text("".join(json.dumps(e) + "\n" for e in epochs))
        (work / name / "quantize.json").write_text(json.dumps({"mask_dice": int8}))


def epoch(n, td, pg, quiet):
    return {
        "epoch": n,
        "val_dice": (td + pg) / 2,
        "val_sets": {
            "TrainDataset": {"dice": td, "quiet": 0, "polyp_free": 0},
            "polypgen": {"dice": pg, "quiet": quiet, "polyp_free": 12},
        },
    }


def test_rule_passes_a_model_on_every_bound_and_names_each_condition_another_fails(tmp_path):
    free = {"seconds": 12.0, "of": 0}
    # the baseline: 124 lesions, 8 + 1 = 9 alarms >= 0.5 s in 209.6 + 12 s = 3.693 minutes (2.4 a minute)
    write_trial(
        tmp_path,
        "bundled",
        stream(124, 80, (30, 20, 8)),
        stream(0, None, (3, 2, 1), specificity=0.81, **free),
    )
    # on every bound: 3 lesions lost, 5 + 1 = 6 alarms (2/3 of 9), best epoch 2 at (0.860 + 0.724) / 2
    # = 0.792 (0.802 - 0.01), 11 of 12 quiet, INT8 0.981; 6 / 3.693 = 1.6 a minute
    write_trial(
        tmp_path,
        "gentle",
        stream(121, 80, (20, 10, 5)),
        stream(0, None, (2, 1, 1), **free),
        [epoch(1, 0.850, 0.720, 12), epoch(2, 0.860, 0.724, 11)],
        0.981,
    )
    # 4 lesions lost, 6 + 1 = 7 alarms, 10 of 12 quiet at its best epoch (1: 0.801), INT8 0.975;
    # its delay (120 ms) and Dice pass
    write_trial(
        tmp_path,
        "harsh",
        stream(120, 120, (20, 10, 6)),
        stream(0, None, (2, 1, 1), specificity=0.99, **free),
        [epoch(1, 0.862, 0.740, 10), epoch(2, 0.850, 0.730, 12)],
        0.975,
    )
    table = load_script("video_metrics_summary").rule(tmp_path, "bundled", ["gentle", "harsh"]).splitlines()
    assert (
        table[-3]
        == "| bundled | - | 0.802 (its run) | - | 124/137 | 80 ms | 8 + 1 = 9 (2.4) | 19% | - | baseline |"
    )
    assert (
        table[-2]
        == "| gentle | 2 | 0.792 (0.860, 0.724) | 11 of 12 | 121/137 | 80 ms | 5 + 1 = 6 (1.6) | 10% | 0.981 | ships |"
    )
    assert table[-1] == (
        "| harsh | 1 | 0.801 (0.862, 0.740) | 10 of 12 | 120/137 | 120 ms | 6 + 1 = 7 (1.9) | 1% | 0.975 | "
        "no: false alarms, lesions, quiet stills, INT8 |"
    )


def test_a_model_the_try_has_not_scored_is_one_line(tmp_path, capsys):
    write_trial(
        tmp_path, "bundled", stream(124, 80, (30, 20, 8)), stream(0, None, (3, 2, 1), of=0, seconds=12.0)
    )
    assert load_script("video_metrics_summary").main(["rule", str(tmp_path), "bundled", "unscored"]) == 2
    missing = tmp_path / "score" / "unscored_val.json"
    assert (
        capsys.readouterr().err == f"error: {missing}: not found (has its measuring script run to the end?)\n"
    )
