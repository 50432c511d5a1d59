"""A small fake batch archive on disk: rows for six videos and their peak-frame thumbnails; the
options of a config dataclass, each changed in turn."""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from polyp_rt.batch.episodes import Episode
from polyp_rt.batch.report import CSV_COLUMNS, STATUS_SKIPPED, VideoRow, peak_thumbnail_path

# a different value for each pipeline option `polyp-rt batch` shares with `polyp-rt run` (the
# model aside): the engine, the probability, the overlay and its polyp indicator
PIPELINE_CHANGED: dict[str, object] = {
    "backend": "openvino",
    "device": "cpu",
    "fp16": True,
    "cuda_graph": True,
    "threshold": 0.3,
    "smoothing": 0.5,
    "overlay.mask_alpha": 0.6,
    "overlay.color": "255,0,0",
    "overlay.contours": False,
    "overlay.hud": False,
    "overlay.presence_on": 2,
    "overlay.presence_window": 6,
    "overlay.presence_off": 4,
    "overlay.min_area": 0.01,
    "overlay.alert_min_frames": 5,
    "overlay.alert_hold": 1,
}


def option_names(config_cls: type, prefix: str = "") -> set[str]:
    """Every option of a config dataclass, a nested one's as "outer.inner"."""
    names = set()
    for f in dataclasses.fields(config_cls):
        default = f.default_factory() if f.default is dataclasses.MISSING else f.default  # type: ignore[misc]
        if dataclasses.is_dataclass(default):
            names |= option_names(type(default), f"{f.name}.")
        else:
            names.add(prefix + f.name)
    return names


def changed(config: Any, name: str, value: object) -> Any:
    """`config` with the option `name` ("outer.inner" for a nested one) set to `value`."""
    outer, _, inner = name.partition(".")
    if inner:
        return dataclasses.replace(
            config, **{outer: dataclasses.replace(getattr(config, outer), **{inner: value})}
        )
    return dataclasses.replace(config, **{name: value})


# A name with every character HTML cares about.
NASTY_NAME = "case 017 <sigmoid> & \"rectum\" 'b'"


def make_episode(
    start_s: float, duration_s: float, peak_area: float, fps: float, at_end: bool = False
) -> Episode:
    start_frame = round(start_s * fps)
    frames = max(1, round(duration_s * fps))
    peak_frame = start_frame + frames // 3
    return Episode(
        start_s=start_frame / fps,
        end_s=start_frame / fps + frames / fps,
        duration_s=frames / fps,
        start_frame=start_frame,
        end_frame=start_frame + frames - 1,
        frames=frames,
        peak_area=peak_area,
        peak_frame=peak_frame,
        peak_t=peak_frame / fps,
        max_prob=min(0.999, 0.6 + peak_area),
        at_video_end=at_end,
    )


def write_thumbnail(path: Path, seed: int, size: tuple[int, int] = (360, 640)) -> None:
    """A colonoscopy-ish still: pink mucosa, dark lumen, a green-tinted 'polyp' with its outline."""
    rng = np.random.default_rng(seed)
    h, w = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    cx, cy = w * rng.uniform(0.35, 0.65), h * rng.uniform(0.35, 0.65)
    r = np.hypot((xx - cx) / w, (yy - cy) / h)
    shade = np.clip(1.2 - 1.6 * r, 0.25, 1.0)
    img = np.empty((h, w, 3), np.float32)
    img[..., 2] = 215 * shade  # BGR: red
    img[..., 1] = 120 * shade
    img[..., 0] = 125 * shade
    img += rng.normal(0, 6, img.shape).astype(np.float32)
    img = np.clip(img, 0, 255).astype(np.uint8)
    cv2.circle(img, (int(cx), int(cy)), h // 9, (25, 20, 40), -1)  # lumen
    px, py = int(w * rng.uniform(0.2, 0.8)), int(h * rng.uniform(0.25, 0.75))
    axes = (int(h * rng.uniform(0.08, 0.2)), int(h * rng.uniform(0.07, 0.16)))
    mask = np.zeros((h, w), np.uint8)
    cv2.ellipse(mask, (px, py), axes, float(rng.uniform(0, 180)), 0, 360, 255, -1)
    tinted = img.copy()
    tinted[mask > 0] = (0.55 * img[mask > 0] + 0.45 * np.array([0, 255, 0])).astype(np.uint8)
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    cv2.drawContours(tinted, contours, -1, (0, 255, 0), max(2, h // 180), cv2.LINE_AA)
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), tinted, [cv2.IMWRITE_JPEG_QUALITY, 88])


def make_fake_archive(out: Path) -> list[VideoRow]:
    """Six videos: several episodes, one ending inside an episode, an hour-long one, one without
    episodes, one skipped as unchanged and one failed; thumbnails written under `out`."""
    specs: list[dict[str, Any]] = [
        dict(
            name="2024-03-05_colo_0412.mp4",
            dur=24 * 60 + 13,
            fps=25.0,
            wall=310.0,
            eps=[
                (95.2, 6.4, 0.082),
                (301.0, 14.9, 0.214),
                (302.0 + 18, 2.2, 0.031),
                (808.5, 41.0, 0.36),
                (1190.0, 3.1, 0.047),
            ],
        ),
        dict(
            name=NASTY_NAME + ".mkv",
            dur=17 * 60 + 40,
            fps=30.0,
            wall=205.0,
            eps=[(150.0, 9.0, 0.12), (1052.0, 8.0, 0.18, True)],
        ),
        dict(
            name="2024-03-06_colo_0419_long.mp4",
            dur=62 * 60 + 10,
            fps=50.0,
            wall=1190.0,
            eps=[(400.0, 5.0, 0.05), (1805.0, 22.0, 0.27), (2960.0, 12.0, 0.11), (3500.0, 0.02, 0.012)],
            size=(1080, 1920),
        ),
        dict(name="2024-03-07_colo_0423.mp4", dur=15 * 60 + 5, fps=60.0, wall=260.0, eps=[]),
        dict(
            name="2024-03-04_colo_0398.mp4",
            dur=21 * 60 + 47,
            fps=25.0,
            wall=None,
            status=STATUS_SKIPPED,
            eps=[(640.0, 11.0, 0.15)],
        ),
    ]
    rows: list[VideoRow] = []
    seed = 0
    for spec in specs:
        fps = spec["fps"]
        eps = [make_episode(e[0], e[1], e[2], fps, at_end=len(e) > 3) for e in spec["eps"]]
        for ep in eps:
            seed += 1
            write_thumbnail(
                out / peak_thumbnail_path(spec["name"], ep.peak_frame), seed, spec.get("size", (360, 640))
            )
        frames = round(spec["dur"] * fps)
        rows.append(
            VideoRow(
                name=spec["name"],
                input_path=f"/data/archive/2024-03/{spec['name']}",
                status=spec.get("status", "ok"),
                duration_s=float(spec["dur"]),
                frames=frames,
                fps_achieved=frames / spec["wall"] if spec["wall"] else None,
                episodes=eps,
            )
        )
    rows.append(
        VideoRow(
            name="2024-03-06_colo_0420.mp4",
            input_path="/data/archive/2024-03/2024-03-06_colo_0420.mp4",
            status="failed",
            error="InputFileError: /data/archive/2024-03/2024-03-06_colo_0420.mp4: the video cannot be decoded\n"
            "(moov atom not found; the recording was probably cut off). Re-export it from the recorder.",
        )
    )
    return rows


@pytest.fixture
def fake_archive(tmp_path: Path) -> tuple[Path, list[VideoRow]]:
    out = tmp_path / "out"
    return out, make_fake_archive(out)


def summary_rows(out: Path) -> dict[str, dict[str, str]]:
    """A batch's summary.csv by video, its columns checked."""
    with (out / "summary.csv").open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        assert tuple(reader.fieldnames or ()) == CSV_COLUMNS
        return {row["video"]: row for row in reader}
