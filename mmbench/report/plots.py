"""Figures rendered with matplotlib (Agg backend, no display needed), written as PNG files."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def shapley_bars(shapley: pd.DataFrame, out_dir: Path, metric: str = "accuracy") -> list[Path]:
    """One bar chart per (dataset, model, recipe): each modality's Shapley value of ``metric``
    (mean over seeds), one bar group per imputation. Returns the files written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    part = shapley[shapley["metric"] == metric]
    files = []
    for (dataset, model, recipe), g in part.groupby(["dataset", "model", "recipe"], sort=True):
        table = g.pivot_table(index="modality", columns="imputation", values="shapley",
                              aggfunc="mean", sort=False)
        fig, ax = plt.subplots(figsize=(1.2 + 0.9 * len(table), 3.2))
        table.plot.bar(ax=ax, width=0.8)
        ax.axhline(0, color="black", linewidth=0.8)
        ax.set_ylabel(f"Shapley value ({metric})")
        ax.set_xlabel("modality")
        ax.set_title(f"{model} ({recipe}) on {dataset}", fontsize=10)
        ax.legend(title="imputation", fontsize=8)
        fig.tight_layout()
        path = out_dir / "plots" / f"shapley_{_safe(dataset)}_{_safe(model)}_{_safe(recipe)}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=100)
        plt.close(fig)
        files.append(path)
    return files
