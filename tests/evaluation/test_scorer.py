"""Every video metric on the scripted clip (tests/evaluation/conftest.py), against figures worked out
by hand from the script. 100 frames at 25 fps: 4.0 s = 1/15 minute, so n per clip is 15 n per minute."""

from __future__ import annotations

import json

import numpy as np
import pytest

from polyp_rt.core.errors import DataError, PolypRtError
from polyp_rt.evaluation.config import MetricsConfig
from polyp_rt.evaluation.score import pool
from polyp_rt.evaluation.scorer import VideoScorer, frame_durations, gap_lesions, spans_to_lesions
from polyp_rt.realtime.alert_gate import AlertGate

FRAMES = 100
MIN_AREA = 0.002


def scored(script, predictions="masks", gate=None, **config):
    scorer = VideoScorer(MIN_AREA)
    for i in range(FRAMES):
        pred = script.prediction(i)
        if gate is not None:
            pred = gate(pred)
        value = pred if predictions == "masks" else float(pred.mean())
        scorer.add(i, script.t(i), script.truth(i), value)
    return scorer.finish(MetricsConfig(**config))


def test_lesions_found_and_how_fast(script):
    s = scored(script)
    # A: truth 10-29, first overlap at 13: 3 frames, 120 ms; B: truth 60-69 + 73-79 (the 3-frame gap
    # is joined, --lesion-gap 10), W at 60-62 misses it, S overlaps from 64: 4 frames, 160 ms
    assert [(les.first_frame, les.last_frame, les.truth_frames) for les in s.lesions] == [
        (10, 29, 20),
        (60, 79, 17),
    ]
    assert [les.delay_frames for les in s.lesions] == [3, 4]
    assert [les.delay_ms for les in s.lesions] == pytest.approx([120.0, 160.0])
    assert s.found == 2 and s.sensitivity == 1.0
    # quartiles of [120, 160] (linear): 130, 140, 150; of [3, 4]: 3.25, 3.5, 3.75
    assert s.delay_quartiles("ms") == pytest.approx((130.0, 140.0, 150.0))
    assert s.delay_quartiles("frames") == pytest.approx((3.25, 3.5, 3.75))
    # coverage: A 13-29 = 17 of 20 frames; B 64-69 and 73-79 = 13 of 17
    assert [les.coverage for les in s.lesions] == pytest.approx([17 / 20, 13 / 17])
    assert s.coverage == pytest.approx((17 / 20 + 13 / 17) / 2)


def test_a_smaller_lesion_gap_splits_lesion_b(script):
    s = scored(script, lesion_gap=2)
    # B1 truth 60-69: first overlap 64 (4 frames), 6 of 10 covered; B2 73-79: at once, 7 of 7
    assert [(les.first_frame, les.delay_frames, les.coverage) for les in s.lesions] == [
        (10, 3, pytest.approx(0.85)),
        (60, 4, pytest.approx(0.6)),
        (73, 0, pytest.approx(1.0)),
    ]


def test_false_alarms_by_duration(script):
    s = scored(script)
    # runs overlapping no truth: F40, F45, F50-51, W60-62 (during lesion B, elsewhere), F83, F86-98
    assert [(a.first_frame, a.frames) for a in s.false_alarms] == [
        (40, 1),
        (45, 1),
        (50, 2),
        (60, 3),
        (83, 1),
        (86, 13),
    ]
    assert [a.duration_s for a in s.false_alarms] == pytest.approx([0.04, 0.04, 0.08, 0.12, 0.04, 0.52])
    assert s.alert_runs == 9  # and the three on the polyp: 13-32, 64-69, 73-79
    assert s.duration_s == pytest.approx(4.0)
    assert [len(s.alarms(tau)) for tau in (0, 0.5, 1, 2)] == [6, 1, 0, 0]
    assert [s.alarms_per_minute(tau) for tau in (0, 0.5, 1, 2)] == pytest.approx([90.0, 15.0, 0.0, 0.0])
    # share of the 4 s: (0.04 + 0.04 + 0.08 + 0.12 + 0.04 + 0.52) / 4 = 0.21; >= 0.5 s: 0.52 / 4
    assert s.alarm_share(0) == pytest.approx(0.21)
    assert s.alarm_share(0.5) == pytest.approx(0.13)


def test_per_frame_figures_and_flicker(script):
    s = scored(script)
    # 37 truth frames (20 + 17), 30 with the alert on the polyp (17 + 13)
    assert (s.truth_frames, s.hit_frames) == (37, 30)
    # 63 polyp-free frames; alerts on 21 of them (30-32, 40, 45, 50, 51, 83, 86-98)
    assert (s.clear_frames, s.quiet_frames) == (63, 42)
    assert s.frame_sensitivity == pytest.approx(30 / 37)
    assert s.frame_specificity == pytest.approx(2 / 3)
    # Dice 1 where the prediction is the truth square (30) or both are empty (42), else 0
    assert s.dice == pytest.approx(0.72)
    # 9 runs, none touching the clip's ends: 18 switches in 1/15 minute
    assert s.switches == 18 and s.switches_per_minute == pytest.approx(270.0)
    # 63 consecutive pairs with a mask in either; IoU 1 inside a run at one place (19 + 1 + 2 + 5 +
    # 6 + 12 = 45 pairs), 0 on entering and leaving each run
    assert (s.iou_pairs, s.iou_sum) == (63, pytest.approx(45.0))
    assert s.frame_iou == pytest.approx(45 / 63)


def test_areas_alone_compare_alerts_with_the_truth_frame_by_frame(script):
    s = scored(script, predictions="areas")
    assert s.overlap == "time"
    # W 60-62 is now an alert during lesion B: not a false alarm, and B is found at 60 at once
    assert [a.first_frame for a in s.false_alarms] == [40, 45, 50, 83, 86]
    assert [les.delay_frames for les in s.lesions] == [3, 0]
    assert s.lesions[1].coverage == pytest.approx(16 / 17)  # 60-62, 64-69, 73-79
    assert s.hit_frames == 33 and s.dice is None and s.frame_iou is None


def test_the_gate_removes_the_short_flickers_and_keeps_the_lesions(script):
    s = scored(script, gate=AlertGate(3, 0))
    # drawn once a region has been found 3 frames in a row: S 15-32, W 62, S 66-69, S 75-79, F 88-98;
    # the one- and two-frame flickers (F40, F45, F50-51, F83) never
    assert [(a.first_frame, a.frames) for a in s.false_alarms] == [(62, 1), (88, 11)]
    assert [len(s.alarms(tau)) for tau in (0, 0.5)] == [2, 0]  # F88-98 lasts 0.44 s
    # the price: two frames more to first detection (A at 15: 5 frames; B at 66: 6 frames)
    assert [les.delay_frames for les in s.lesions] == [5, 6]
    assert [les.delay_ms for les in s.lesions] == pytest.approx([200.0, 240.0])
    assert [les.coverage for les in s.lesions] == pytest.approx([15 / 20, 9 / 17])
    assert s.found == 2


def test_pooling_two_videos_counts_lesions_and_minutes_together(script):
    a, b = scored(script), scored(script, gate=AlertGate(3, 0))
    both = pool([a, b])
    assert both.found == 4 and len(both.lesions) == 4
    assert both.duration_s == pytest.approx(8.0)
    # (6 + 2) alarms in 8 s = 2/15 minute: 60 a minute; delays [120, 160, 200, 240] ms: median 180
    assert both.alarms_per_minute(0) == pytest.approx(60.0)
    assert both.delay_quartiles("ms")[1] == pytest.approx(180.0)
    assert both.frame_sensitivity == pytest.approx((30 + 24) / 74)


def test_the_summary_is_strict_json(script):
    summary = scored(script).summary()
    text = json.dumps(summary, allow_nan=False)
    again = json.loads(text)
    assert again["lesions_found"] == 2 and again["false_alarms"][1] == {
        "tau_s": 0.5,
        "count": 1,
        "per_minute": pytest.approx(15.0),
        "share_of_time": pytest.approx(0.13),
    }
    assert again["first_detection_ms"]["median"] == pytest.approx(140.0)


def test_frame_durations_follow_the_timestamps():
    # a 40 ms clip with one dropped-frame hole (0.12 -> 0.40 s is 7 periods: counted as one)
    t = [0.0, 0.04, 0.08, 0.12, 0.40, 0.44]
    assert frame_durations(t) == pytest.approx([0.04, 0.04, 0.04, 0.04, 0.04, 0.04])
    assert frame_durations([0.0], nominal_fps=25.0) == pytest.approx([0.04])
    # variable rate: each frame until the next; the last one a median period (0.05)
    assert frame_durations([0.0, 0.05, 0.08, 0.16]) == pytest.approx([0.05, 0.03, 0.08, 0.05])


def test_lesion_grouping():
    truth = [False, True, True, False, False, True, False, False, False, True]
    assert gap_lesions(truth, 2) == [[1, 2, 5], [9]]  # 3-4 joined (2 frames), 6-8 not (3)
    assert gap_lesions(truth, 0) == [[1, 2], [5], [9]]
    index = list(range(10))
    assert spans_to_lesions(truth, index, [(0, 4), (5, 9)]) == [[1, 2], [5, 9]]
    with pytest.raises(DataError, match="frame 9 has a polyp mask but lies in none"):
        spans_to_lesions(truth, index, [(0, 6)])
    with pytest.raises(DataError, match="frames 3..4 has no frame with a polyp"):
        spans_to_lesions(truth, index, [(0, 2), (3, 4), (5, 9)])


def test_bad_taus_are_one_line_errors():
    with pytest.raises(PolypRtError, match="--tau -1"):
        MetricsConfig(tau=[0.5, -1.0]).taus()
    assert MetricsConfig(tau=[2.0, 0.5, 0.5]).taus() == (0.5, 2.0)


def test_an_empty_video_part_has_no_lesions_and_no_rates():
    scorer = VideoScorer(MIN_AREA)
    empty = np.zeros((8, 8), np.uint8)
    scorer.add(0, 0.0, empty, empty)
    s = scorer.finish(MetricsConfig(), nominal_fps=25.0)
    assert s.lesions == () and s.sensitivity is None and s.delay_quartiles() is None
    assert s.alarms_per_minute(0.5) == 0.0 and s.frame_specificity == 1.0


def test_a_false_region_beside_a_found_polyp_is_a_false_alarm_of_its_own():
    # 20 frames, the polyp S (rows 5-14, cols 5-14) in all of them and found in all of them, and
    #   F (rows 5-14, cols 25-34) in frames 5-9: a false alarm of 5 frames beside the polyp;
    #   A (rows 25-29, cols 0-9) and B (cols 20-29) in frames 10-12, one region C (cols 0-29) across
    #   both in 13-14, A and B again in 15-16: one alert (they met), a false alarm of 7 frames.
    def square(rows, cols):
        mask = np.zeros((40, 40), np.uint8)
        mask[rows[0] : rows[1] + 1, cols[0] : cols[1] + 1] = 1
        return mask

    s_, f_ = square((5, 14), (5, 14)), square((5, 14), (25, 34))
    a_, b_, c_ = square((25, 29), (0, 9)), square((25, 29), (20, 29)), square((25, 29), (0, 29))
    scorer = VideoScorer(MIN_AREA)
    for i in range(20):
        pred = s_.copy()
        if 5 <= i <= 9:
            pred |= f_
        if 10 <= i <= 12 or 15 <= i <= 16:
            pred |= a_ | b_
        if 13 <= i <= 14:
            pred |= c_
        scorer.add(i, i / 25, s_, pred)
    s = scorer.finish(MetricsConfig())
    assert s.alert_runs == 3
    assert [(a.first_frame, a.last_frame) for a in s.false_alarms] == [(5, 9), (10, 16)]
    assert [a.duration_s for a in s.false_alarms] == pytest.approx([0.2, 0.28])
    assert s.found == 1 and s.lesions[0].delay_frames == 0 and s.frame_sensitivity == 1.0
