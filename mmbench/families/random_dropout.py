"""``random_dropout``: each modality of each row missing with probability ``rate`` (at least one
kept), imputed. Scores: the mean value over rates and imputations (``missing_mean_rate``, the
composite part), the area under value vs rate (``missing_relative_robustness``), and
MultiBench's fixed-step variant."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import pandas as pd

from mmbench.stats.curves import KEY, curve_score, seed_mean
from mmbench.families.base import Context, Family, ScoreSpec
from mmbench.perturb.dropout import IMPUTATION_TERM
from mmbench.registry import FAMILIES
from mmbench.render.plots import Plot, curves
from mmbench.render.tables import Board, level_table

NAME = "random_dropout"


@FAMILIES.register(NAME)
class RandomDropout(Family):
    """Per-row random modality dropout at rates; value vs rate curves."""

    name = NAME
    terms = {
        "dropout rate": "Probability that each modality of a test row is dropped (then imputed).",
        "imputation": IMPUTATION_TERM,
    }
    title = "random modality dropout"
    order = 30
    scores = (
        ScoreSpec("missing_mean_rate", "mean value over random-dropout rates and imputations",
                  "random-dropout", main=True),
        ScoreSpec("missing_relative_robustness", "area under value vs dropout rate (real spacing) / "
                  "rate span", "random-dropout"),
        ScoreSpec("missing_relative_robustness_fixed_step", "MultiBench's variant: trapezoid area "
                  "with a fixed 0.1 step between consecutive rates", "random-dropout"),
    )
    composite = "missing_mean_rate"

    def compute(self, ctx: Context) -> dict[str, pd.Series]:
        rates = seed_mean(ctx.rows(NAME), ["imputation", "severity"])
        if rates.empty:
            return {}
        return {"missing_mean_rate": rates.groupby(KEY)["value"].mean(),
                "missing_relative_robustness": curve_score(rates, lambda r: r["severity"]),
                "missing_relative_robustness_fixed_step": curve_score(rates, lambda r: r["severity"], 0.1)}

    def boards(self, ctx: Context, dataset: str) -> list[Board]:
        table = partial(level_table, index=["model", "recipe", "imputation"], ascending=ctx.scorer.ascending,
                        axis="dropout rate")
        return self.board(ctx, dataset, table, f"{dataset}: {ctx.scorer.name} vs random modality-dropout rate")

    def plots(self, ctx: Context, out_dir: Path) -> list[Plot]:
        rows = ctx.rows(NAME).rename(columns={"severity": "level"})
        metric = ctx.scorer.name
        return [Plot(curves(g, out_dir, [NAME, dataset, how], "dropout rate per modality", metric,
                            f"random modality dropout, {how} imputation, {dataset}", colours=ctx.palette),
                     f"{metric} when each modality is dropped at random with the given rate (dropped ones "
                     f"imputed by {how}), mean over seeds; one line per model.", dataset)
                for (dataset, how), g in rows.groupby(["dataset", "imputation"], sort=True)]
