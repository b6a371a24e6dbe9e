"""``natural_shift``: evaluation on a dataset's held-out groups (real, measured shift). Scores:
the mean value on the held-out groups other than the in-distribution bins (``ood_accuracy``)
and the worst group (``worst_group_accuracy``, the composite part)."""

from __future__ import annotations

import pandas as pd

from mmbench.stats.corruption import natural_summary
from mmbench.families.base import Context, Family, ScoreSpec
from mmbench.registry import FAMILIES
from mmbench.render.tables import Board, Column, Num, Table

NAME = "natural_shift"
IN_DISTRIBUTION = "id"


@FAMILIES.register(NAME)
class NaturalShift(Family):
    """Held-out groups of real shift: out-of-distribution and worst-group values."""

    name = NAME
    terms = {
        "group": "Score on one group of the natural split: id is the in-distribution test rows, the "
                 "others are held-out groups.",
    }
    title = "natural shift"
    order = 50
    scores = (
        ScoreSpec("ood_accuracy", "mean value on the held-out groups other than the "
                  "in-distribution bins", "natural-shift"),
        ScoreSpec("worst_group_accuracy", "worst value over the in-distribution test rows and every "
                  "held-out group", "natural-shift", main=True),
    )
    composite = "worst_group_accuracy"

    def compute(self, ctx: Context) -> dict[str, pd.Series]:
        summary = natural_summary(ctx.rows(NAME), ctx.scorer)
        if summary.empty:
            return {}
        indexed = summary.set_index(["dataset", "model", "recipe"])
        held_out = [c for c in indexed.columns if c not in (IN_DISTRIBUTION, "worst_group") and not c.startswith("q")]
        out = {"worst_group_accuracy": indexed["worst_group"]}
        if held_out:
            out["ood_accuracy"] = indexed[held_out].mean(axis=1)
        return out

    def boards(self, ctx: Context, dataset: str) -> list[Board]:
        summary = natural_summary(ctx.rows(NAME), ctx.scorer)
        part = summary[summary["dataset"] == dataset].sort_values(
            ["worst_group", "model"], ascending=[ctx.scorer.ascending, True], kind="stable")
        if part.empty:
            return []
        cols = [c for c in part.columns if c not in ("dataset", "model", "recipe") and part[c].notna().any()]
        lines = tuple((r["model"], r["recipe"], *(Num(r[c]) for c in cols)) for _, r in part.iterrows())
        better = ctx.scorer.higher_is_better
        columns = (Column("model"), Column("recipe", term="recipe"),
                   *(Column(c, better, term="worst_group_accuracy" if c == "worst_group" else "group")
                     for c in cols))
        return [Board(f"{dataset}: natural shift ({ctx.scorer.name} in distribution, per held-out group, "
                      "worst group)", Table(columns, lines))]
