"""Figures rendered with matplotlib (Agg backend, no display needed), written as PNG files."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def _pyplot():  # noqa: ANN202 (matplotlib.pyplot, imported lazily with the Agg backend)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, out_dir: Path, *name: str) -> Path:  # noqa: ANN001 (a matplotlib Figure)
    """Lay out, write ``plots/<name parts joined by _>.png`` and close ``fig``."""
    fig.tight_layout()
    path = out_dir / "plots" / ("_".join(_safe(n) for n in name) + ".png")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    fig.clf()
    _pyplot().close(fig)
    return path


def shapley_bars(shapley: pd.DataFrame, out_dir: Path, metric: str = "accuracy") -> list[Path]:
    """One bar chart per (dataset, model, recipe): each modality's Shapley value of ``metric``
    (mean over seeds), one bar group per imputation. Returns the files written."""
    plt = _pyplot()

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
        files.append(_save(fig, out_dir, "shapley", dataset, model, recipe))
    return files


def level_curves(frame: pd.DataFrame, out_dir: Path, family: str, prefix: str, xlabel: str,
                 metric: str = "accuracy") -> list[Path]:
    """One line chart per (dataset, perturbation, target) of ``family`` whose perturbation name
    starts with ``prefix``: ``metric`` (mean over seeds) against the level (``severity``: a
    dropout rate, a corruption severity), one line per (model, recipe). Returns the files."""
    plt = _pyplot()

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
        files.append(_save(fig, out_dir, family, dataset, name, target))
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


def robust_curves(frame: pd.DataFrame, out_dir: Path) -> list[Path]:
    """Robust accuracy vs eps per target modality: the worst attack at each eps (mean over
    seeds), clean accuracy at eps 0, one line per model (via :func:`level_curves`)."""
    acc = frame[frame["metric"] == "accuracy"]
    adv = acc[acc["family"] == "adversarial"]
    if adv.empty:
        return []
    keys = ["dataset", "model", "recipe", "seed", "target", "severity"]
    worst = adv.groupby(keys, as_index=False)["value"].min()
    targets = worst[["dataset", "model", "recipe", "seed", "target"]].drop_duplicates()
    clean = acc[acc["family"] == "clean"].drop(columns=["target"]).merge(targets)
    rows = pd.concat([worst, clean[keys + ["value"]]]).assign(
        family="adversarial", metric="accuracy", perturbation="worst-attack")
    return level_curves(rows, out_dir, "adversarial", "worst-attack", "eps (normalised units)")


def rank_stability(replicates: pd.DataFrame, out_dir: Path, score: str) -> list[Path]:
    """Per dataset, how often each model takes each rank by ``score`` over the bootstrap
    replicates (rows: models by their median rank; columns: ranks; cells: frequency)."""
    plt = _pyplot()

    part = replicates[replicates["score"] == score]
    files = []
    for dataset, g in part.groupby("dataset", sort=True):
        g = g.assign(entry=g["model"] + " (" + g["recipe"] + ")")
        g = g.assign(rank=g.groupby("b")["value"].rank(ascending=False, method="first").astype(int))
        freq = pd.crosstab(g["entry"], g["rank"], normalize="index")
        freq = freq.loc[g.groupby("entry")["rank"].median().sort_values(kind="stable").index]
        fig, ax = plt.subplots(figsize=(2.5 + 0.5 * freq.shape[1], 1.2 + 0.35 * len(freq)))
        image = ax.imshow(freq.to_numpy(), cmap="Blues", vmin=0, vmax=1, aspect="auto")
        ax.set_xticks(range(freq.shape[1]), [str(c) for c in freq.columns])
        ax.set_yticks(range(len(freq)), list(freq.index), fontsize=8)
        ax.set_xlabel(f"rank by {score}")
        ax.set_title(f"rank stability over {g['b'].nunique()} bootstrap replicates, {dataset}", fontsize=9)
        fig.colorbar(image, ax=ax, fraction=0.05, label="frequency")
        files.append(_save(fig, out_dir, "rank_stability", dataset))
    return files
