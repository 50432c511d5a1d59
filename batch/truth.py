"""`polyp-rt batch --truth DIR`: each video's truth folder, and its video metrics (lesions found, time
to first detection, false alarms per minute: docs/VIDEO_METRICS.md) scored from the video's own
result folder, so a changed truth is scored again without running the model again.

Pairing: the video whose result folder is `<stem><suffix>` (`case_0142.mp4`) takes `DIR/<stem>/`
(`DIR/case_0142/`), or `DIR/<stem>_masks/` as `polyp-rt synth --video` writes it; one mask per
frame, `000000.png ...`, optionally `truth.json`. A video without either has no figures (empty
cells); a folder of DIR that pairs with no video is named in one warning line.

A video's figures go into `<folder>/metrics.json`: which truth, the `key` they were made with
(the truth folder's content and the scoring options), and every stream's `VideoScore` whole, so a
rerun reads them back and the archive's figures pool exactly. The manifest keeps the key: a rerun
scores a finished video again when its truth's content or a scoring option changed.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from polyp_rt.core.errors import PolypRtError
from polyp_rt.core.files import image_files, write_json
from polyp_rt.core.names import printable
from polyp_rt.evaluation.config import UNGATED, MetricsConfig
from polyp_rt.evaluation.score import VideoScore
from polyp_rt.evaluation.streams import GateFactory
from polyp_rt.evaluation.truth import TRUTH_INFO, TruthFolder
from polyp_rt.realtime.alert_gate import AlertGate

log = logging.getLogger(__name__)

METRICS = "metrics.json"
BESIDE = "_masks"  # DIR/<stem>_masks/, as `polyp-rt synth --video` writes a clip's truth
UNPAIRED_LISTED = 5  # truth folders that pair with no video, named in the warning


@dataclass(frozen=True)
class Scoring:
    """How one video is scored: its truth folder (None: it has none) or why it has no usable one,
    and the options the figures depend on. Plain data: it travels to the worker inside the job."""

    truth: Path | None
    problem: str = ""  # a truth found but unusable (a gap in its masks, two candidates): no figures
    min_area: float = 0.002
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    gate: tuple[int, int] = (1, 0)  # what the live loop drew (--alert-min-frames, --alert-hold)
    gates: tuple[tuple[int, int], ...] = ()  # replayed as well (--gates), points of the plot

    @property
    def wanted(self) -> bool:
        return self.truth is not None and not self.problem

    @property
    def drawn(self) -> str:
        """The stream of what was drawn: the gate's, or "ungated" where the gate draws every mask."""
        gate = AlertGate(*self.gate)
        return UNGATED if gate.passes_all else gate.label

    def gate_factories(self) -> dict[str, GateFactory]:
        factories: dict[str, GateFactory] = {}
        for min_frames, hold in (self.gate, *self.gates):
            gate = AlertGate(min_frames, hold)
            if not gate.passes_all:
                factories[gate.label] = _factory(min_frames, hold)
        return factories

    def options(self) -> dict[str, Any]:
        """The scoring options, as the manifest keeps them."""
        options = {"min_area": self.min_area, "gate": list(self.gate), "gates": [list(g) for g in self.gates]}
        return json.loads(json.dumps({**options, **asdict(self.metrics)}))  # type: ignore[no-any-return]


def _factory(min_frames: int, hold: int) -> GateFactory:
    return lambda: AlertGate(min_frames, hold)


@dataclass(frozen=True)
class TruthOutcome:
    """What scoring one video gave: its figures per stream, or the one-line reason it has none."""

    truth: str = ""  # the truth folder, printable ("" where the video has none)
    error: str = ""
    scores: dict[str, VideoScore] | None = None
    drawn: str = ""  # the stream of what was drawn
    key: dict[str, Any] | None = None  # for the manifest: what the figures were made from


def pair_truth(truth_dir: Path, names: list[str], scoring: Scoring) -> dict[str, Scoring]:
    """Each video name -> its `Scoring` (its truth folder, or none, or the problem with it); one
    warning line for what does not fit (a problem per video, the folders that pair with no video)."""
    if not truth_dir.is_dir():
        raise PolypRtError(f"--truth {truth_dir}: not a folder (it holds one folder of masks per video)")
    stems: dict[str, list[str]] = {}
    for name in names:
        stems.setdefault(Path(name).stem, []).append(name)
    paired: dict[str, Scoring] = {}
    used: set[str] = set()
    for stem, group in stems.items():
        found = [truth_dir / n for n in (stem, stem + BESIDE) if (truth_dir / n).is_dir()]
        used |= {p.name for p in found}
        problem = ""
        if len(group) > 1 and found:
            problem = f"{', '.join(group)} all pair with {printable(found[0])}; rename all but one video"
        elif len(found) > 1:
            problem = f"{printable(found[0])} and {printable(found[1])} are both its truth; keep one"
        elif found:
            problem = _unusable(found[0])
        for name in group:
            paired[name] = _replace(scoring, found[0] if found else None, problem)
            if problem:
                log.warning("%s: no video metrics: %s", printable(name), problem)
    unpaired = sorted(p.name for p in truth_dir.iterdir() if p.is_dir() and p.name not in used)
    if unpaired:
        shown = ", ".join(printable(n) for n in unpaired[:UNPAIRED_LISTED])
        more = f" and {len(unpaired) - UNPAIRED_LISTED} more" if len(unpaired) > UNPAIRED_LISTED else ""
        log.warning(
            "--truth %s: %d folder(s) pair with no video of this batch (%s%s); a video pairs with "
            "DIR/<its name without suffix>/",
            printable(truth_dir),
            len(unpaired),
            shown,
            more,
        )
    return paired


def _replace(scoring: Scoring, truth: Path | None, problem: str) -> Scoring:
    return Scoring(truth, problem, scoring.min_area, scoring.metrics, scoring.gate, scoring.gates)


def _unusable(folder: Path) -> str:
    """Why the truth folder cannot be scored against, found before any video runs ("" if none
    is): a frame's mask missing, masks not named by frame number, a truth.json that does not fit."""
    try:
        TruthFolder(folder)
    except PolypRtError as exc:
        return str(exc)
    return ""


# ---------------------------------------------------------------------------------------------
# What the figures are made from


def truth_print(folder: Path, known: dict[str, Any] | None = None) -> dict[str, Any]:
    """The truth folder's content: a digest of its listing (names, sizes, times: quick) and of its
    bytes. Where the listing is `known`'s, its content digest is taken as known; else it is read."""
    files = sorted(image_files(folder))
    if (folder / TRUTH_INFO).is_file():
        files.append(folder / TRUTH_INFO)
    listing = hashlib.sha256()
    for file in files:
        st = file.stat()
        listing.update(f"{file.name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    if known and known.get("listing") == listing.hexdigest() and known.get("sha256"):
        return dict(known)
    content = hashlib.sha256()
    for file in files:
        content.update(f"{file.name}\0".encode())
        content.update(file.read_bytes())
    return {"listing": listing.hexdigest(), "sha256": content.hexdigest()}


def make_key(scoring: Scoring, known: dict[str, Any] | None = None) -> dict[str, Any]:
    """What a video's figures are made from: the truth's content and the scoring options."""
    assert scoring.truth is not None
    previous = (known or {}).get("truth")
    return {"truth": truth_print(scoring.truth, previous), "options": scoring.options()}


def same_key(stored: Any, current: dict[str, Any]) -> bool:
    """Whether figures made with `stored` are those `current` would make (the content decides,
    not the listing: a copied truth folder is the same truth)."""
    return (
        isinstance(stored, dict)
        and stored.get("options") == current["options"]
        and (stored.get("truth") or {}).get("sha256") == current["truth"]["sha256"]
    )


# ---------------------------------------------------------------------------------------------
# Scoring and reading back


def score_folder(folder: Path, name: str, scoring: Scoring) -> TruthOutcome:
    """Score the result folder `folder` (frames.jsonl, masks/, stats.json) of the video `name`
    against its truth and write `folder/metrics.json`; a truth that does not fit the video (another
    length, size or video) is the outcome's one-line error, and no file is written."""
    if scoring.truth is None:
        return TruthOutcome()
    truth = printable(scoring.truth)
    if scoring.problem:
        forget_metrics(folder)
        return TruthOutcome(truth, scoring.problem)
    from polyp_rt.evaluation.record import score_record

    key = make_key(scoring)  # before the masks are read: a truth changed meanwhile is scored again
    try:
        evaluation = score_record(
            folder,
            scoring.truth,
            min_area=scoring.min_area,
            metrics=scoring.metrics,
            gates=scoring.gate_factories(),
            name=name,
        )
    except PolypRtError as exc:
        forget_metrics(folder)  # figures of an earlier truth do not stand for this one
        return TruthOutcome(truth, str(exc))
    outcome = TruthOutcome(truth, "", evaluation.scores, scoring.drawn, key)
    write_json(
        folder / METRICS,
        {
            "video": name,
            "truth": truth,
            "drawn": outcome.drawn,
            "key": key,
            "notes": list(evaluation.notes),
            "summary": evaluation.summary(),
            "scores": {stream: score.to_json() for stream, score in evaluation.scores.items()},
        },
    )
    return outcome


def read_metrics(folder: Path, key: dict[str, Any]) -> TruthOutcome | None:
    """The figures `folder/metrics.json` holds if they were made with `key`; None where they were
    not (or cannot be read): the video is scored again."""
    try:
        data = json.loads((folder / METRICS).read_text(encoding="utf-8"))
        if not same_key(data.get("key"), key):
            return None
        scores = {stream: VideoScore.from_json(s) for stream, s in data["scores"].items()}
        return TruthOutcome(str(data["truth"]), "", scores, str(data["drawn"]), key)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        if not isinstance(exc, FileNotFoundError):
            log.warning("%s: cannot read its video metrics (%s): scoring it again", folder.name, exc)
        return None


def forget_metrics(folder: Path) -> None:
    """Remove figures that no longer fit the truth (scored again, or the truth was refused)."""
    (folder / METRICS).unlink(missing_ok=True)
