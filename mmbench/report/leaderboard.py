"""Markdown leaderboards from tidy rows: one table per dataset, models ranked, mean ± std over
seeds (the ± part is omitted when there is a single seed)."""

from __future__ import annotations

import pandas as pd
from tabulate import tabulate

from mmbench.registry import METRICS

SEED_COLUMNS = ["dataset", "model", "recipe", "metric"]


def summarise(frame: pd.DataFrame, family: str = "clean") -> pd.DataFrame:
    """Mean, std and seed count per (dataset, model, recipe, metric) for one family."""
    rows = frame[frame["family"] == family]
    grouped = rows.groupby(SEED_COLUMNS, sort=True)["value"]
    out = grouped.agg(mean="mean", std="std", seeds="count").reset_index()
    out["std"] = out["std"].fillna(0.0)
    return out


def format_cell(mean: float, std: float, seeds: int) -> str:
    return f"{mean:.4f}" if seeds < 2 else f"{mean:.4f} ± {std:.4f}"


def dataset_board(summary: pd.DataFrame, dataset: str, metrics: list[str]) -> str:
    """One dataset's table, ranked by the first metric (direction from the metric registry)."""
    part = summary[summary["dataset"] == dataset]
    table = part.pivot_table(index=["model", "recipe"], columns="metric",
                             values=["mean", "std", "seeds"], aggfunc="first")
    rank_metric = metrics[0]
    ascending = not METRICS.get(rank_metric).higher_is_better
    order = table[("mean", rank_metric)].sort_values(ascending=ascending, kind="stable")
    lines = []
    for rank, (model, recipe) in enumerate(order.index, start=1):
        row = table.loc[(model, recipe)]
        cells = [format_cell(row[("mean", m)], row[("std", m)], int(row[("seeds", m)]))
                 for m in metrics]
        lines.append([rank, model, recipe, *cells, int(row[("seeds", rank_metric)])])
    headers = ["rank", "model", "recipe", *metrics, "seeds"]
    return tabulate(lines, headers=headers, tablefmt="github", disable_numparse=True)


def render_leaderboard(frame: pd.DataFrame, title: str) -> str:
    """The Markdown document: a heading, then one clean-performance table per dataset."""
    summary = summarise(frame)
    metrics = list(dict.fromkeys(frame.loc[frame["family"] == "clean", "metric"]))
    parts = [f"# Leaderboard: {title}", ""]
    for dataset in sorted(summary["dataset"].unique()):
        parts += [f"## {dataset} (clean, test split)", "", dataset_board(summary, dataset, metrics), ""]
    return "\n".join(parts).rstrip() + "\n"
