"""``clean``: the unperturbed evaluation split; its board lists every metric of the suite.

Every robust-vs-clean comparison must be on the same rows: for each row subset another family
evaluated (``max_rows``), the clean cell restricted to exactly those rows is derived from the
stored outcomes (nothing is rerun), so curves start from, and sanity checks compare against, the
clean value of the rows that were perturbed."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

import pandas as pd

from mmbench.analysis.curves import KEY
from mmbench.families.base import CLEAN, Context, Family, ScoreSpec
from mmbench.metrics.outcomes import Samples, SampleSet
from mmbench.registry import FAMILIES, METRICS
from mmbench.render.tables import Board, Column, Num, Table, half_width
from mmbench.store.rows import CellFacts


@FAMILIES.register(CLEAN)
class Clean(Family):
    """The unperturbed evaluation split; its board lists every metric of the suite."""

    name = CLEAN
    title = "clean"
    order = 0
    scores = (ScoreSpec("clean_accuracy", "the score metric on the clean evaluation split",
                        "clean-accuracy", main=True),)

    def compute(self, ctx: Context) -> dict[str, pd.Series]:
        rows = ctx.clean_rows()
        return {"clean_accuracy": rows.groupby(KEY)["value"].mean()} if len(rows) else {}

    def derive(self, facts: Mapping[str, CellFacts],
               samples: Mapping[str, Samples]) -> dict[str, tuple[CellFacts, Samples]]:
        """The clean cell of each trained model on every row subset another cell evaluated."""
        subsets: dict[tuple[str, str], dict[SampleSet, Samples]] = {}
        for key, s in samples.items():
            if s.sample_set.rows and key in facts:
                subsets.setdefault((s.sample_set.dataset, s.sample_set.split), {})[s.sample_set] = s
        out = {}
        for key, f in facts.items():
            full = samples.get(key)
            if f.family != CLEAN or full is None or full.sample_set.rows:
                continue
            for sample_set, s in subsets.get((f.dataset, f.split), {}).items():
                if set(s.ids) <= set(full.ids):
                    out[f"{CLEAN}:{key}:{sample_set.rows}"] = (replace(f, rows=sample_set.rows),
                                                               full.restricted(sample_set, s.ids))
        return out

    def boards(self, ctx: Context, dataset: str) -> list[Board]:
        rows = ctx.clean_rows(any_metric=True)
        rows = rows[rows["dataset"] == dataset]
        if rows.empty:
            return []
        present = set(rows["metric"])
        metrics = [m for m in dict.fromkeys((*ctx.metrics, *sorted(present))) if m in present]
        note = ("± is the half-width of the 95% bootstrap interval over test samples; sd the standard "
                "deviation across training seeds.")
        return [Board(f"{dataset} (clean, test split)", metric_board(rows, metrics), note)]


def metric_board(rows: pd.DataFrame, metrics: list[str]) -> Table:
    """Models ranked by the first of ``metrics`` (its declared direction); each cell the mean over
    seeds ± the mean half-width of the cells' intervals, and the sd across seeds."""
    summary = rows.assign(hw=half_width(rows)).groupby(["model", "recipe", "metric"]).agg(
        mean=("value", "mean"), std=("value", "std"), seeds=("value", "count"), hw=("hw", "mean"))
    first = metrics[0]
    order = summary.xs(first, level="metric")["mean"].sort_values(
        ascending=not METRICS.get(first).higher_is_better, kind="stable")
    lines = []
    for rank, (model, recipe) in enumerate(order.index, start=1):
        cells = []
        for m in metrics:
            s = summary.loc[(model, recipe, m)] if (model, recipe, m) in summary.index else None
            cells.append(Num(None) if s is None else Num(s["mean"], s["hw"], s["std"] if s["seeds"] >= 2 else None))
        lines.append((rank, model, recipe, *cells, int(summary.loc[(model, recipe, first), "seeds"])))
    columns = (Column("rank", term="rank"), Column("model"), Column("recipe", term="recipe"),
               *(Column(m, METRICS.get(m).higher_is_better, term=m) for m in metrics), Column("seeds", term="seeds"))
    return Table(columns, tuple(lines))
