"""Loss curves from the Trainer's log history, and their plot."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def loss_curves(log_history: list[dict[str, Any]]) -> dict[str, list[tuple[int, float]]]:
    """``{"train": [(step, loss)], "eval": [(step, eval_loss)]}`` from the Trainer's log history."""
    train = [(int(e["step"]), float(e["loss"])) for e in log_history if "loss" in e and "step" in e]
    evals = [(int(e["step"]), float(e["eval_loss"])) for e in log_history if "eval_loss" in e and "step" in e]
    return {"train": train, "eval": evals}


def plot_losses(log_history: list[dict[str, Any]], path: str | Path, title: str = "") -> Path | None:
    """Write the loss curve(s) as a PNG; returns None (with a warning) if matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        import warnings

        warnings.warn("matplotlib is not installed, so no loss plot was written: pip install matplotlib", stacklevel=2)
        return None
    curves = loss_curves(log_history)
    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    if curves["train"]:
        ax.plot(
            *zip(*curves["train"], strict=True),
            label="training loss",
            marker="." if len(curves["train"]) < 30 else None,
        )
    if curves["eval"]:
        ax.plot(*zip(*curves["eval"], strict=True), label="validation loss", marker="o")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss")
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out)
    plt.close(fig)
    return out
