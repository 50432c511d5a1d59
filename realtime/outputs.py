"""The paths a run reads and writes, checked before anything is opened for writing.

`compose()` calls `check_run_paths`, so `polyp-rt run`, `bench --pipeline`, `batch` and the
tests all get the same rule: no output is an input or another output (the recording, the masks
folder, the stats JSON and the histogram written beside it), none replaces an earlier output
(an existing file, a masks folder that holds files) unless --overwrite, and every output can be
written before the first frame is read. Outputs that another writer holds now are refused
here too; the writers' own locks (the recorder and the mask writer lock their output from
opening to closing, core/locks.py) settle a race.
"""

from __future__ import annotations

import logging
from pathlib import Path

from polyp_rt.core.errors import OutputError
from polyp_rt.core.locks import check_free
from polyp_rt.core.paths import Place, check_new, check_outputs, check_writable
from polyp_rt.realtime.config import RunConfig
from polyp_rt.realtime.sources import source_path

log = logging.getLogger(__name__)


def histogram_path(stats_json: Path) -> Path:
    """The latency histogram, written beside the stats JSON."""
    return stats_json.with_suffix(".png")


def run_places(config: RunConfig) -> tuple[list[Place], list[Place]]:
    """(what the run reads, what it writes)."""
    inputs = [Place("--model", config.model)] if config.model is not None else []
    source = source_path(config.source) if config.source else None
    if source is not None and source.exists():
        inputs.append(Place("--source", source, folder=source.is_dir()))
    if config.truth:
        inputs.append(Place("--truth", config.truth, folder=True))
    outputs = []
    if config.record:
        outputs.append(Place("--record", config.record))
    if config.masks_out:
        outputs.append(Place("--masks-out", config.masks_out, folder=True))
    if config.stats_json:
        outputs.append(Place("--stats-json", config.stats_json))
        outputs.append(
            Place("the latency histogram written beside --stats-json", histogram_path(config.stats_json))
        )
    return inputs, outputs


def check_run_paths(config: RunConfig) -> None:
    """OutputError for the first output that clashes, an earlier output it would replace (a file
    that exists, a masks folder that holds files: without --overwrite), or an output that cannot
    be written."""
    if config.stats_json and config.stats_json.suffix.lower() == ".png":
        raise OutputError(
            f"{config.stats_json}: the latency histogram is written beside --stats-json with the suffix "
            ".png, so it would replace the statistics; name the statistics file .json"
        )
    inputs, outputs = run_places(config)
    check_outputs(inputs, outputs)
    for place in outputs:
        if not place.folder:  # the masks folder: below, with what it holds said
            check_new(place, config.overwrite)
    if config.masks_out and config.masks_out.is_dir():
        held = sum(1 for _ in config.masks_out.iterdir())
        if held and not config.overwrite:
            raise OutputError(
                f"{config.masks_out}: --masks-out already holds {held} files (masks of an earlier run?); "
                "choose an empty or new folder, or pass --overwrite to write into it"
            )
        if held:
            log.warning(
                "%s holds %d files already: masks of the same name are replaced, the others stay (--overwrite)",
                config.masks_out,
                held,
            )
    for place in outputs:
        check_writable(place)
        check_free(place.path, place.what, place.folder)  # a writer of it running now
