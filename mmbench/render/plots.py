"""Figures rendered with matplotlib (Agg backend, no display needed), written as PNG files under
``<out>/plots/``. Each function draws what it is given; families decide what to plot."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import pandas as pd


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def _pyplot():  # noqa: ANN202 (matplotlib.pyplot, imported lazily with the Agg backend)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save(fig, out_dir: Path, *name: str) -> Path:  # noqa: ANN001 (a matplotlib Figure)
    """Lay out, write ``plots/<name parts joined by _>.png`` and close ``fig``."""
    fig.tight_layout()
    path = out_dir / "plots" / ("_".join(_safe(n) for n in name) + ".png")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    fig.clf()
    _pyplot().close(fig)
    return path


def curves(rows: pd.DataFrame, out_dir: Path, name: Sequence[str], xlabel: str, ylabel: str,
           title: str, integer_levels: bool = False) -> Path:
    """One line per (model, recipe) of ``value`` (mean over seeds) against ``level``; colour by
    model, line style by recipe; ``integer_levels``: ticks only at whole levels."""
    plt = _pyplot()
    table = rows.pivot_table(index="level", columns=["model", "recipe"], values="value",
                             aggfunc="mean").sort_index()
    columns = 1 + (table.shape[1] - 1) // 16  # legend columns beside the axes
    fig, ax = plt.subplots(figsize=(5.5 + 2.6 * columns, max(3.4, 0.2 * table.shape[1] / columns + 1)))
    models = list(dict.fromkeys(m for m, _ in table.columns))
    recipes = list(dict.fromkeys(r for _, r in table.columns))
    colours = plt.get_cmap("tab20")
    for (model, recipe), values in table.items():
        ax.plot(table.index, values, marker="o", markersize=3, label=f"{model} ({recipe})",
                color=colours(models.index(model) % 20),
                linestyle=("-", "--", ":", "-.")[recipes.index(recipe) % 4])
    if integer_levels:
        ax.set_xticks(sorted({float(v) for v in table.index}))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1), ncol=columns, frameon=False)
    return save(fig, out_dir, *name)


def grouped_bars(table: pd.DataFrame, out_dir: Path, name: Sequence[str], xlabel: str, ylabel: str,
                 title: str, legend: str) -> Path:
    """Bars of ``table`` (rows: x groups, columns: series), with a zero line."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(1.2 + 0.9 * len(table), 3.2))
    table.plot.bar(ax=ax, width=0.8)
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_ylabel(ylabel)
    ax.set_xlabel(xlabel)
    ax.set_title(title, fontsize=10)
    ax.legend(title=legend, fontsize=8)
    return save(fig, out_dir, *name)


def rank_stability(replicates: pd.DataFrame, out_dir: Path, score: str, ascending: bool = False) -> list[Path]:
    """Per dataset, how often each model takes each rank by ``score`` over the bootstrap
    replicates (rows: models by their median rank; columns: ranks; cells: frequency)."""
    plt = _pyplot()
    part = replicates[replicates["score"] == score]
    files = []
    for dataset, g in part.groupby("dataset", sort=True):
        g = g.assign(entry=g["model"] + " (" + g["recipe"] + ")")
        g = g.assign(rank=g.groupby("b")["value"].rank(ascending=ascending, method="first").astype(int))
        freq = pd.crosstab(g["entry"], g["rank"], normalize="index")
        freq = freq.loc[g.groupby("entry")["rank"].median().sort_values(kind="stable").index]
        fig, ax = plt.subplots(figsize=(3.5 + 0.5 * freq.shape[1], 1.4 + 0.35 * len(freq)))
        image = ax.imshow(freq.to_numpy(), cmap="Blues", vmin=0, vmax=1, aspect="auto")
        ax.set_xticks(range(freq.shape[1]), [str(c) for c in freq.columns])
        ax.set_yticks(range(len(freq)), list(freq.index), fontsize=8)
        ax.set_xlabel(f"rank by {score}")
        ax.set_title(f"rank stability, {g['b'].nunique()} bootstrap replicates\n{dataset}", fontsize=9)
        fig.colorbar(image, ax=ax, fraction=0.05, label="frequency")
        files.append(save(fig, out_dir, "rank_stability", dataset))
    return files
