"""What the commands print: the closing tables, the live status line."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from polyp_rt.core.names import printable
from polyp_rt.realtime.stats import STAGES, LatencyStats

console = Console()
VIDEO_DELAY = "video delay (capture → shown)"
ANNOTATION_DELAY = "annotation delay (capture → its mask shown)"


def facts_table(title: str, rows: Mapping[str, object]) -> Table:
    table = Table(title=title)
    table.add_column("")
    table.add_column("value", justify="right")
    for key, value in rows.items():
        table.add_row(key, str(value))
    return table


def benchmark_table(title: str, results: Mapping[str, Mapping[str, Any]]) -> Table:
    """One row per data set, as polyp papers report: mean Dice and IoU per image (mDice, mIoU),
    precision and recall per image, the all-pixel Dice and IoU, and the polyp-free images left
    quiet; three decimals (`--json` has them all), headers that wrap, so an 80-column terminal
    shows every figure whole."""
    table = Table(title=title, pad_edge=False)
    table.add_column("data set", overflow="fold", min_width=6)
    for name in ("images", "mDice", "mIoU", "precision", "recall", "Dice all px", "IoU all px"):
        table.add_column(name, justify="right", min_width=5)
    table.add_column("quiet", justify="right", min_width=5)
    for label, m in results.items():
        micro = m.get("micro") or {}
        cells = [_score(m.get(k)) for k in ("dice", "iou", "precision", "recall")]
        cells += [_score(micro.get(k)) for k in ("dice", "iou")]
        free = int(m.get("polyp_free") or 0)
        quiet = f"{m.get('quiet')} of {free}" if free else "-"
        table.add_row(label, str(m["images"]), *cells, quiet)
    which = "; ".join(f"{label}: {m['which']}" for label, m in results.items() if m.get("which"))
    table.caption = f"{which} · quiet: polyp-free images without a mask" if which else None
    return table


def _score(value: object) -> str:
    return f"{value:.3f}" if isinstance(value, float) else "-"


def status_line(stats: LatencyStats, status: str, series: str = "e2e") -> Text:
    """The live status line: frames, throughput and the p50/p99 of the latency `series` (end to
    end; "processing" for a file read as fast as possible)."""
    p50 = stats.recent_e2e_percentile(50, 120, series)
    p99 = stats.recent_e2e_percentile(99, 120, series)
    fps = stats.frames_out / stats.seconds if stats.seconds > 0 else 0.0
    name = "latency" if series == "processing" else "e2e"
    text = f"{stats.frames_out} frames  {fps:5.1f} fps  {name} p50 {p50:6.1f} ms  p99 {p99:6.1f} ms"
    return Text(text + (f"  [{status}]" if status else ""), style="bold")


FLAT_OUT_WAITS = {"queue": "queue (read-ahead)", "output queue": "output queue (wait)"}


def stats_table(summary: dict[str, Any], title: str, flat_out: bool = False) -> Table:
    """Per stage and end to end, p50/p90/p99/max. For a source read as fast as possible
    (`flat_out`) the end-to-end figure holds the frames' wait in the capture queue behind the
    inference thread, and in the output queue behind the sinks (back-pressure, not latency): the
    latency row is then processing (taken -> drawn, without the output queue), and fps is the
    throughput."""
    table = Table(title=escape(printable(title)))  # a file name in the title is text, not markup
    table.add_column("stage")
    for column in ("count", "mean", "p50", "p90", "p99", "max"):
        table.add_column(column + (" ms" if column != "count" else ""), justify="right")
    modes = summary.get("modes") or {}
    passthrough = modes.get("display") == "passthrough"
    stages = summary["stages_ms"]
    waits = FLAT_OUT_WAITS if flat_out else {}
    rows: list[tuple[str, Any, str | None]] = [
        (waits.get(name, name), stages[name], "dim" if name in waits else None) for name, _, _ in STAGES
    ]
    if flat_out:
        rows += [
            ("end to end (+ wait)", summary["e2e_ms"], "dim"),
            ("latency", summary["processing_ms"], "bold"),
        ]
    else:
        rows += [
            (VIDEO_DELAY, summary["video_delay_ms"], "bold"),
            (ANNOTATION_DELAY, summary["annotation_delay_ms"], "bold"),
        ]
    if passthrough:
        rows.append(("mask age (frame shown - mask's frame)", summary["mask_age_ms"], None))
    rows += [(f"GPU {step} (CUDA events)", s, None) for step, s in summary.get("gpu_ms", {}).items()]
    for name, s, style in rows:
        table.add_row(
            name,
            str(s["count"]),
            *(f"{s[k]:.1f}" if s["count"] else "-" for k in ("mean", "p50", "p90", "p99", "max")),
            style=style,
        )
    dropped = ", ".join(f"{k} {v}" for k, v in summary["dropped"].items() if v) or "none"
    skipped = ", ".join(f"{k} {v}" for k, v in summary["skipped"].items()) or "none"
    mode = ""
    if modes:
        requests = f" ({modes['requests']} requests in flight)" if modes.get("requests", 1) > 1 else ""
        mode = f"{modes['display']} display, {modes['inference']} inference{requests} · "
    inferred = ""
    if passthrough:
        inferred = (
            f", {summary['frames_inferred']} inferred, {summary['frames_unannotated']} shown without a mask"
        )
    speed = f"throughput {summary['fps']:.1f} fps" if flat_out else f"{summary['fps']:.1f} fps"
    table.caption = (
        f"{mode}{summary['frames_in']} frames in, {summary['frames_processed']} shown{inferred}, "
        f"{speed} over {summary['seconds']:.1f} s · dropped: {dropped} · skipped input: {skipped}"
    )
    if summary.get("nonfinite_frames"):
        table.caption += f" · NaN logits in {summary['nonfinite_frames']} frames"
    if flat_out:
        table.caption += (
            "\nthe file is read as fast as the pipeline takes it, so each frame waits in the two queues "
            "for those ahead of it (back-pressure, not latency): latency is the rest, from the "
            "inference thread taking the frame to its picture drawn"
        )
    if summary.get("damage"):  # a warning was logged too; this is where the run is summed up
        table.caption += "\n" + escape(f"damaged input: {printable(summary['damage'])}")
    return table
