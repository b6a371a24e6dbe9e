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


def level_curves(frame: pd.DataFrame, out_dir: Path, family: str, prefix: str, xlabel: str,
                 metric: str = "accuracy") -> list[Path]:
    """One line chart per (dataset, perturbation, target) of ``family`` whose perturbation name
    starts with ``prefix``: ``metric`` (mean over seeds) against the level (``severity``: a
    dropout rate, a corruption severity), one line per (model, recipe). Returns the files."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    part = frame[(frame["family"] == family) & (frame["metric"] == metric)
                 & frame["perturbation"].str.startswith(prefix)]
    files = []
    for (dataset, name, target), g in part.groupby(["dataset", "perturbation", "target"], sort=True):
        curves = g.pivot_table(index="severity", columns=["model", "recipe"], values="value",
                               aggfunc="mean").sort_index()
        columns = 1 + (curves.shape[1] - 1) // 16  # legend columns beside the axes
        fig, ax = plt.subplots(figsize=(5.5 + 2.6 * columns, max(3.4, 0.2 * curves.shape[1] / columns + 1)))
        models = list(dict.fromkeys(m for m, _ in curves.columns))
        recipes = list(dict.fromkeys(r for _, r in curves.columns))
        colours = plt.get_cmap("tab20")
        for (model, recipe), values in curves.items():  # colour: model; line style: recipe
            ax.plot(curves.index, values, marker="o", markersize=3, label=f"{model} ({recipe})",
                    color=colours(models.index(model) % 20),
                    linestyle=("-", "--", ":", "-.")[recipes.index(recipe) % 4])
        ax.set_xlabel(xlabel)
        ax.set_ylabel(metric)
        ax.set_title(f"{name} on {target}, {dataset}", fontsize=10)
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1), ncol=columns, frameon=False)
        fig.tight_layout()
        path = out_dir / "plots" / f"{_safe(family)}_{_safe(dataset)}_{_safe(name)}_{_safe(target)}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=100)
        plt.close(fig)
        files.append(path)
    return files


def mean_level_curves(frame: pd.DataFrame, out_dir: Path, family: str, xlabel: str,
                      metric: str = "accuracy") -> list[Path]:
    """:func:`level_curves` of the mean over the family's perturbations (e.g. all corruptions)
    per target, severity 0 included when measured; the ``natural`` rows are left out."""
    part = frame[(frame["family"] == family) & (frame["metric"] == metric)
                 & (frame["perturbation"] != "natural")]
    if part.empty:
        return []
    keys = ["dataset", "model", "recipe", "seed", "target", "severity"]
    mean = part.groupby(keys, as_index=False)["value"].mean()
    mean = mean.assign(family=family, metric=metric, perturbation="mean")
    return level_curves(mean, out_dir, family, "mean", xlabel, metric)
