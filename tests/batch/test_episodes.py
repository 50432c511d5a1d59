"""Episodes from per-frame records: the incremental tracker and the batch function."""

from __future__ import annotations

import itertools
import json
import math
import statistics
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

try:  # once batch/ is wired into pyproject.toml as polyp_rt.batch
    from polyp_rt.batch.episodes import Episode, EpisodeTracker, episodes, iter_frames_jsonl
except ImportError:  # until then: the repo root on sys.path, the room imported as `batch`
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from batch.episodes import Episode, EpisodeTracker, episodes, iter_frames_jsonl  # type: ignore[no-redef]


def rec(
    frame: int, t: float, area: float = 0.0, polyp: bool = False, max_prob: float = 0.5
) -> dict[str, Any]:
    return {"frame": frame, "t": t, "area": area, "max_prob": max_prob, "polyp": polyp}


def uniform(flags: str, fps: float = 25.0, areas: list[float] | None = None) -> list[dict[str, Any]]:
    """Records at a constant rate from a string of 0/1 indicator states."""
    areas = areas or [0.1 * (i % 7 + 1) if c == "1" else 0.0 for i, c in enumerate(flags)]
    return [rec(i, i / fps, areas[i], c == "1", 0.5 + areas[i] / 2) for i, c in enumerate(flags)]


def reference(records: list[dict[str, Any]], window: int = 64) -> list[dict[str, Any]]:
    """A second, whole-list implementation: runs by groupby, end at the next frame's time, or at
    the end of the video one frame period (median of the last `window` intervals) after the last."""
    ts = [r["t"] for r in records]
    out = []
    i = 0
    for polyp, group in itertools.groupby(records, key=lambda r: r["polyp"]):
        run = list(group)
        j = i + len(run)
        if polyp:
            if j < len(records):
                end = ts[j]
            else:
                gaps = [b - a for a, b in zip(ts[:-1], ts[1:], strict=True) if b > a][-window:]
                end = ts[-1] + (statistics.median(gaps) if gaps else 0.0)
            peak = max(run, key=lambda r: (r["area"], -r["frame"]))
            out.append(
                dict(
                    start_s=run[0]["t"],
                    end_s=end,
                    start_frame=run[0]["frame"],
                    end_frame=run[-1]["frame"],
                    frames=len(run),
                    peak_frame=peak["frame"],
                    peak_area=peak["area"],
                    max_prob=max(r["max_prob"] for r in run),
                    at_video_end=j == len(records),
                )
            )
        i = j
    return out


def test_no_frames_and_no_polyp() -> None:
    assert episodes([]) == []
    assert episodes(uniform("0000000")) == []
    tracker = EpisodeTracker()
    assert tracker.finish() is None
    assert tracker.duration_s == 0.0 and tracker.frames_seen == 0


def test_two_episodes_at_constant_rate() -> None:
    areas = [0, 0.1, 0.3, 0.2, 0, 0, 0.05, 0.05, 0]
    found = episodes(uniform("011100110", fps=25.0, areas=areas))
    assert [(e.start_frame, e.end_frame, e.frames) for e in found] == [(1, 3, 3), (6, 7, 2)]
    first, second = found
    assert first.start_s == pytest.approx(0.04) and first.end_s == pytest.approx(0.16)
    assert first.duration_s == pytest.approx(0.12)
    assert (first.peak_frame, first.peak_area, first.peak_t) == (2, 0.3, pytest.approx(0.08))
    assert first.max_prob == pytest.approx(0.65)
    assert second.peak_frame == 6, "on a tie the earliest frame stays the peak"
    assert not first.at_video_end and not second.at_video_end


def test_video_ends_inside_an_episode() -> None:
    (last,) = episodes(uniform("0000111", fps=50.0))
    assert last.at_video_end
    assert (last.start_frame, last.end_frame) == (4, 6)
    assert last.end_s == pytest.approx(6 / 50 + 1 / 50), "last frame's time plus one frame period"
    assert last.duration_s == pytest.approx(3 / 50)


def test_single_frame_episodes() -> None:
    middle, end = episodes(uniform("0010001", fps=30.0))
    assert (middle.start_frame, middle.end_frame, middle.frames) == (2, 2, 1)
    assert middle.duration_s == pytest.approx(1 / 30) and middle.peak_frame == 2
    assert end.frames == 1 and end.at_video_end and end.duration_s == pytest.approx(1 / 30)


def test_one_frame_video_uses_the_nominal_rate_only_when_it_must() -> None:
    (alone,) = episodes([rec(0, 0.0, 0.2, True)])
    assert alone.duration_s == 0.0, "no interval seen and no nominal rate: nothing to extend by"
    (alone,) = episodes([rec(0, 0.0, 0.2, True)], nominal_fps=25.0)
    assert alone.duration_s == pytest.approx(0.04)
    (timed,) = episodes(uniform("0111", fps=50.0), nominal_fps=25.0)
    assert timed.duration_s == pytest.approx(3 / 50), "the timestamps win over the nominal rate"
    with pytest.raises(ValueError, match="nominal_fps"):
        EpisodeTracker(nominal_fps=0.0)


def test_variable_frame_rate() -> None:
    # intervals alternate 1/30 and 1/60 s, with a slow patch of 1/15 s
    gaps = [1 / 30, 1 / 60] * 10 + [1 / 15] * 4 + [1 / 30, 1 / 60] * 5
    ts = np.concatenate([[0.0], np.cumsum(gaps)]).tolist()
    flags = [7 <= i <= 23 or i >= 33 for i in range(len(ts))]
    records = [rec(i, t, 0.1, f) for i, (t, f) in enumerate(zip(ts, flags, strict=True))]
    mid, end = episodes(records)
    assert mid.start_s == pytest.approx(ts[7]) and mid.end_s == pytest.approx(ts[24]), (
        "ends at the next frame"
    )
    median = statistics.median(gaps)
    assert end.at_video_end and end.end_s == pytest.approx(ts[-1] + median)
    assert mid.end_s == ts[24], "exactly the next frame's time, not a sum that rounds"


def test_a_gap_in_the_timestamps_does_not_stretch_an_episode() -> None:
    records = uniform("01110", fps=25.0)
    records[4]["t"] = 12.0  # the decoder skipped ~12 s after the episode's last frame
    (ep,) = episodes(records)
    assert ep.end_s == pytest.approx(3 / 25 + 1 / 25)


def test_tracker_steps_and_peaks() -> None:
    areas = [0, 0.2, 0.1, 0.2, 0.4, 0.3, 0, 0.1]
    tracker = EpisodeTracker()
    steps = [tracker.feed(r) for r in uniform("01111101", areas=areas)]
    assert [s.started for s in steps] == [False, True, False, False, False, False, False, True]
    assert [s.new_peak for s in steps] == [False, True, False, False, True, False, False, True]
    assert [s.closed is not None for s in steps] == [False] * 6 + [True, False]
    closed = steps[6].closed
    assert closed is not None and closed.peak_frame == 4 and closed.peak_area == 0.4
    assert tracker.in_episode and len(tracker.episodes) == 1
    last = tracker.finish()
    assert last is not None and last.at_video_end and last.peak_frame == 7
    assert tracker.finish() is None, "finish() is idempotent"
    assert tracker.episodes == [closed, last]
    assert tracker.polyp_s == pytest.approx(closed.duration_s + last.duration_s)
    assert tracker.duration_s == pytest.approx(8 / 25)
    with pytest.raises(RuntimeError):
        tracker.feed(rec(8, 0.32))


@pytest.mark.parametrize("seed", range(6))
def test_tracker_batch_and_reference_agree(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 2500))
    # indicator as a two-state Markov chain; jittered (variable) frame intervals around 25-60 fps
    stay = rng.uniform(0.9, 0.995)
    flags = [bool(rng.random() < 0.3)]
    for _ in range(n - 1):
        flags.append(flags[-1] if rng.random() < stay else not flags[-1])
    ts = np.cumsum(rng.uniform(1 / 60, 1 / 25, n)) + rng.uniform(0, 5)
    areas = np.round(rng.uniform(0, 0.5, n), 3)  # rounding makes ties happen
    records = [
        rec(i, float(t), float(a) if f else 0.0, f, float(rng.uniform()))
        for i, (t, a, f) in enumerate(zip(ts, areas, flags, strict=True))
    ]

    batch = episodes(records)
    tracker = EpisodeTracker()
    peaks_kept: dict[int, int] = {}  # start frame -> the frame whose thumbnail the worker would hold
    incremental: list[Episode] = []
    current_start = None
    for r in records:
        step = tracker.feed(r)
        if step.closed:
            incremental.append(step.closed)
        if step.started:
            current_start = r["frame"]
        if step.new_peak:
            peaks_kept[current_start] = r["frame"]
    if (last := tracker.finish()) is not None:
        incremental.append(last)
    assert incremental == batch == tracker.episodes

    expected = reference(records)
    assert len(batch) == len(expected)
    for ep, ref in zip(batch, expected, strict=True):
        for key, value in ref.items():
            assert getattr(ep, key) == pytest.approx(value), key
        assert ep.duration_s == pytest.approx(ep.end_s - ep.start_s) and ep.duration_s > 0
        assert peaks_kept[ep.start_frame] == ep.peak_frame, "the last new_peak of an episode is its peak"
    assert tracker.polyp_s == pytest.approx(sum(e["end_s"] - e["start_s"] for e in expected))


def test_episode_json_is_strict_and_round_trips() -> None:
    (ep,) = episodes(uniform("0110"))
    text = ep.to_json()

    def no_constants(name: str) -> None:
        raise AssertionError(f"non-strict JSON constant {name}")

    assert Episode.from_dict(json.loads(text, parse_constant=no_constants)) == ep
    broken = Episode(**(ep.to_dict() | {"peak_area": math.nan}))
    with pytest.raises(ValueError):
        broken.to_json()
    with pytest.raises(ValueError, match="lacks 'peak_t'"):
        Episode.from_dict({k: v for k, v in ep.to_dict().items() if k != "peak_t"})


def test_bad_records_are_refused_with_the_frame_named() -> None:
    with pytest.raises(ValueError, match="frame 3: t must be finite"):
        episodes([rec(3, math.inf, 0.1, True)])
    with pytest.raises(ValueError, match="frame 4: area must be finite"):
        episodes([rec(4, 0.1, math.nan, True)])
    with pytest.raises(ValueError, match="lacks 'area'"):
        episodes([{"frame": 0, "t": 0.0, "polyp": True, "max_prob": 0.9}])


def test_frames_jsonl_round_trip_and_cut_file(tmp_path: Path) -> None:
    records = uniform("0011100010")
    path = tmp_path / "video" / "frames.jsonl"
    path.parent.mkdir()
    path.write_text("".join(json.dumps(r, allow_nan=False) + "\n" for r in records) + "\n")
    assert list(iter_frames_jsonl(path)) == records
    assert episodes(iter_frames_jsonl(path)) == episodes(records)

    cut = path.read_text().rstrip("\n") + '\n{"frame": 10, "t": 0.4, "ar'  # the worker died mid-line
    path.write_text(cut)
    with pytest.raises(ValueError, match=r"frames\.jsonl:11: not a JSON line"):
        list(iter_frames_jsonl(path))
