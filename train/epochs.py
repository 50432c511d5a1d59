"""One epoch of training and one validation pass, the schedule, and what each epoch records."""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from polyp_rt.engines.contract import ModelContract
from polyp_rt.train.metrics import MetricSet

log = logging.getLogger(__name__)

Loader = torch.utils.data.DataLoader[tuple[torch.Tensor, torch.Tensor]]


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


@dataclass
class Progress:
    """The last finished epoch, the best validation Dice so far and epochs since it improved."""

    epoch: int = 0
    best_dice: float = -1.0
    stale: int = 0

    @classmethod
    def of(cls, state: dict[str, Any]) -> Progress:
        """From the state a last.pt keeps."""
        return cls(int(state["epoch"]), float(state["best_val_dice"]), int(state.get("stale_epochs", 0)))

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

    def run(self, epoch: int, train: Loader, val: dict[str, Loader], bar: Any) -> dict[str, Any]:
        """Train one epoch, validate on every data set; the epoch's metrics.jsonl record."""
        t0 = time.monotonic()
        loss = self.train(train, bar, epoch)
        scores = {name: self.validate(loader) for name, loader in val.items()}
        lr = self.optimizer.param_groups[0]["lr"]
        return epoch_record(epoch, loss, scores, lr, time.monotonic() - t0)

    def state(self, progress: Progress) -> dict[str, Any]:
        """What last.pt keeps beside the weights so a stopped run resumes where it was."""
        return {
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "epoch": progress.epoch,
            "best_val_dice": progress.best_dice,
            "stale_epochs": progress.stale,
        }

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
