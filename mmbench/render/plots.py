"""Figures rendered with matplotlib (Agg backend, no display needed), written as PNG files under
``<out>/plots/``. Each function draws what it is given; families decide what to plot."""

from __future__ import annotations

import colorsys
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from mmbench.store.folders import write_atomic
from mmbench.text import file_slug

#: distinct model colours: matplotlib's tab10, then ten from Kelly's colours of maximum contrast
#: chosen away from those (black, light blue, reddish brown, salmon, violet, ...)
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
           "#bcbd22", "#17becf", "#000000", "#a1caf1", "#882d17", "#f99379", "#604e97", "#8db600",
           "#c2b280", "#2b3d26", "#f3c300", "#00a693")


@dataclass(frozen=True)
class Plot:
    """A figure of a run: its PNG, a caption saying what it shows, the dataset it is about
    (empty: the whole run) and the report ``section`` it belongs to (a family's name, filled in
    by the analysis, or ``profile`` / ``ranking``)."""

    path: Path
    caption: str
    dataset: str = ""
    section: str = ""


def model_colours(models: Sequence[str]) -> dict[str, str]:
    """One distinct colour per model, in the given order (the run's sorted labels, so every plot
    and the report give a model the same colour); past the palette, golden-angle hues."""
    out = {}
    for i, model in enumerate(models):
        if i < len(PALETTE):
            out[model] = PALETTE[i]
        else:
            r, g, b = colorsys.hls_to_rgb((i * 0.618034) % 1.0, 0.45, 0.65)
            out[model] = f"#{int(r * 255):02x}{int(g * 255):02x}{int(b * 255):02x}"
    return out


def _pyplot():  # noqa: ANN202 (matplotlib.pyplot, imported lazily with the Agg backend)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def wrap_titles(fig) -> None:  # noqa: ANN001 (a matplotlib Figure)
    """Wrap each axes title to the figure's width (about 0.6 em per character), long words
    included, so tight_layout never has to cut one off."""
    for ax in fig.axes:
        title = ax.get_title()
        if title:
            size = ax.title.get_fontsize()
            width = max(int(fig.get_figwidth() * 72 / (0.6 * size)), 20)
            lines = [textwrap.fill(line, width, break_long_words=True) for line in title.split("\n")]
            ax.set_title("\n".join(lines), fontsize=size)


def save(fig, out_dir: Path, *name: str) -> Path:  # noqa: ANN001 (a matplotlib Figure)
    """Lay out (titles wrapped, so none is cut off), write ``plots/<name parts joined by
    _>.png`` and close ``fig``."""
    wrap_titles(fig)
    fig.tight_layout()
    path = out_dir / "plots" / ("_".join(file_slug(n) for n in name) + ".png")
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, lambda tmp: fig.savefig(tmp, dpi=100, format="png"))
    fig.clf()
    _pyplot().close(fig)
    return path


def curves(rows: pd.DataFrame, out_dir: Path, name: Sequence[str], xlabel: str, ylabel: str,
           title: str, integer_levels: bool = False, colours: Mapping[str, str] | None = None) -> Path:
    """One line per (model, recipe) of ``value`` (mean over seeds) against ``level``; colour by
    model (``colours``: the run's model colours), line style by recipe; ``integer_levels``:
    ticks only at whole levels."""
    plt = _pyplot()
    table = rows.pivot_table(index="level", columns=["model", "recipe"], values="value",
                             aggfunc="mean").sort_index()
    columns = 1 + (table.shape[1] - 1) // 16  # legend columns beside the axes
    fig, ax = plt.subplots(figsize=(5.5 + 2.6 * columns, max(3.4, 0.2 * table.shape[1] / columns + 1)))
    models = list(dict.fromkeys(m for m, _ in table.columns))
    recipes = list(dict.fromkeys(r for _, r in table.columns))
    colours = colours or model_colours(models)
    for (model, recipe), values in table.items():
        ax.plot(table.index, values, marker="o", markersize=3, label=f"{model} ({recipe})",
                color=colours.get(model, "#444444"),
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


def rank_stability(replicates: pd.DataFrame, out_dir: Path, score: str, ascending: bool = False) -> list[Plot]:
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
        files.append(Plot(save(fig, out_dir, "rank_stability", dataset),
                          f"How often each model takes each rank by {score} over {g['b'].nunique()} bootstrap "
                          "replicates of the test rows: a model whose row is spread over several ranks is not "
                          "separated from its neighbours.", dataset, "ranking"))
    return files


def profile(scores: pd.DataFrame, order: Sequence[str], entries: Sequence[tuple[str, str]], out_dir: Path,
            dataset: str, colours: Mapping[str, str], ylabel: str) -> Path:
    """The robustness profile of one dataset: for each score in ``order`` (x groups), one bar per
    (model, recipe) of ``entries`` in its model colour (hatched by recipe), with its 95% interval."""
    plt = _pyplot()
    recipes = list(dict.fromkeys(r for _, r in entries))
    fig, ax = plt.subplots(figsize=(9.6, 3.9))
    width = 0.84 / max(len(entries), 1)
    indexed = scores.set_index(["score", "model", "recipe"])
    for i, (model, recipe) in enumerate(entries):
        keys = [(s, model, recipe) for s in order]
        rows = indexed.reindex(keys)
        x = [j - 0.42 + width * (i + 0.5) for j in range(len(order))]
        err = [(rows["value"] - rows["ci_low"]).clip(lower=0).fillna(0),
               (rows["ci_high"] - rows["value"]).clip(lower=0).fillna(0)]
        label = model if len(recipes) == 1 else f"{model} ({recipe})"
        ax.bar(x, rows["value"].fillna(0), width, yerr=err, capsize=2, color=colours.get(model, "#444444"),
               hatch=("", "//", "..", "xx")[recipes.index(recipe) % 4], edgecolor="white", linewidth=0.5,
               label=label, error_kw={"elinewidth": 0.8, "ecolor": "#333333"})
    ax.set_xticks(range(len(order)), [textwrap.fill(s.replace("_", " "), 14) for s in order], fontsize=8)
    ax.set_ylabel(ylabel)
    ax.set_ylim(bottom=0)
    ax.grid(axis="y", linewidth=0.4, alpha=0.5)
    ax.set_axisbelow(True)
    ax.set_title(f"robustness profile, {dataset}: every model's scores with 95% intervals", fontsize=10)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False,
              ncol=1 + (len(entries) - 1) // 18)
    return save(fig, out_dir, "profile", dataset)
