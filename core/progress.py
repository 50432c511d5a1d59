"""The progress bar of long work (training, evaluation, data checks, synthetic data).

It draws on stderr, so stdout carries only what a command prints (tables, JSON for scripts).
"""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn


def progress_bar() -> Progress:
    """A transient bar on stderr; off where stderr is not a terminal (a log file, a pipe, CI)."""
    console = Console(stderr=True)
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[status]}"),
        transient=True,
        console=console,
        disable=not console.is_terminal,
    )
