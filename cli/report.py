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


def facts_table(title: str, rows: Mapping[str, object]) -> Table:
    table = Table(title=title)
    table.add_column("")
    table.add_column("value", justify="right")
    for key, value in rows.items():
        table.add_row(key, str(value))
    return table


def benchmark_table(title: str, results: Mapping[str, Mapping[str, Any]]) -> Table:
    """One row per data set, as polyp papers report: mean Dice and IoU per image (mDice, mIoU),
    precision and recall per image, the all-pixel Dice and IoU, and the polyp-free images left quiet."""
    table = Table(title=title)
    for name in (
        "data set",
        "images",
        "mDice",
        "mIoU",
        "precision",
        "recall",
        "Dice (all pixels)",
        "IoU (all pixels)",
    ):
        table.add_column(name, justify="left" if name == "data set" else "right")
    table.add_column("polyp-free left quiet", justify="right")
    for label, m in results.items():
        micro = m.get("micro") or {}
        cells = [_score(m.get(k)) for k in ("dice", "iou", "precision", "recall")]
        cells += [_score(micro.get(k)) for k in ("dice", "iou")]
        free = int(m.get("polyp_free") or 0)
        quiet = f"{m.get('quiet')} of {free}" if free else "-"
        table.add_row(label, str(m["images"]), *cells, quiet)
    table.caption = "; ".join(f"{label}: {m['which']}" for label, m in results.items() if m.get("which"))
    return table


def _score(value: object) -> str:
    return f"{value:.4f}" if isinstance(value, float) else "-"


def status_line(stats: LatencyStats, status: str) -> Text:
    p50, p99 = stats.recent_e2e_percentile(50, 120), stats.recent_e2e_percentile(99, 120)
    fps = stats.frames_out / stats.seconds if stats.seconds > 0 else 0.0
    text = f"{stats.frames_out} frames  {fps:5.1f} fps  e2e p50 {p50:6.1f} ms  p99 {p99:6.1f} ms"
    return Text(text + (f"  [{status}]" if status else ""), style="bold")


def stats_table(summary: dict[str, Any], title: str) -> Table:
    table = Table(title=escape(printable(title)))  # a file name in the title is text, not markup
    table.add_column("stage")
    for column in ("count", "mean", "p50", "p90", "p99", "max"):
        table.add_column(column + (" ms" if column != "count" else ""), justify="right")
    rows = [(name, summary["stages_ms"][name]) for name, _, _ in STAGES] + [("end to end", summary["e2e_ms"])]
    rows += [(f"GPU {step} (CUDA events)", s) for step, s in summary.get("gpu_ms", {}).items()]
    for name, s in rows:
        table.add_row(
            name,
            str(s["count"]),
            *(f"{s[k]:.1f}" if s["count"] else "-" for k in ("mean", "p50", "p90", "p99", "max")),
            style="bold" if name == "end to end" else None,
        )
    dropped = ", ".join(f"{k} {v}" for k, v in summary["dropped"].items() if v) or "none"
    skipped = ", ".join(f"{k} {v}" for k, v in summary["skipped"].items()) or "none"
    caption = (
        f"{summary['frames_in']} frames in, {summary['frames_processed']} processed, {summary['fps']:.1f} fps "
        f"over {summary['seconds']:.1f} s · dropped: {dropped} · skipped input: {skipped}"
    )
    if summary.get("damage"):  # a warning was logged too; this is where the run is summed up
        caption += "\n" + escape(f"damaged input: {printable(summary['damage'])}")
    table.caption = caption
    return table
