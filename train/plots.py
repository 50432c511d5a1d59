"""Training curves as a PNG (matplotlib, no display needed)."""

from __future__ import annotations

import json
from pathlib import Path


def plot_curves(metrics_jsonl: Path, out_png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [json.loads(line) for line in metrics_jsonl.read_text().splitlines() if line.strip()]
    rows = [{k: float("nan") if v is None else v for k, v in r.items()} for r in rows]  # null: NaN
    epochs = [r["epoch"] for r in rows]
    fig, (ax_loss, ax_dice) = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    ax_loss.plot(epochs, [r["train_loss"] for r in rows], "o-", label="train")
    ax_loss.plot(epochs, [r["val_loss"] for r in rows], "o-", label="validation")
    ax_loss.set(title="loss", xlabel="epoch")
    ax_loss.legend()
    sets = list(rows[-1].get("val_sets") or {})
    mean = "Dice (mean over the data sets)" if len(sets) > 1 else "Dice"
    ax_dice.plot(epochs, [r["val_dice"] for r in rows], "o-", color="tab:green", label=mean)
    ax_dice.plot(epochs, [r["val_iou"] for r in rows], "o-", color="tab:olive", label="IoU")
    for name in sets if len(sets) > 1 else []:
        dice = [(r.get("val_sets") or {}).get(name, {}).get("dice", float("nan")) for r in rows]
        ax_dice.plot(epochs, dice, "--", label=f"Dice {name}")
    ax_dice.set(title="validation (per image, at model size)", xlabel="epoch", ylim=(0, 1))
    ax_dice.legend()
    fig.savefig(out_png, dpi=100)
    plt.close(fig)
