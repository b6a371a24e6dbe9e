"""``shift``: corruptions from the library at severities 1-5 (0 is the clean reference), per
modality and on all modalities, random ones averaged over draws.

Scores (docs/metrics.md): the mean value over conditions and the severities that ran
(``shift_mean_accuracy``, the composite part), the area under value vs severity/5 with the
clean value at 0 (``shift_relative_robustness``), and mCE / relative mCE against the suite's
``baseline`` model. ``corruptions.csv`` holds every condition's RA, CE and relative CE."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from mmbench.stats.corruption import corruption_errors, severity_means, shift_summary
from mmbench.stats.curves import KEY, curve_score
from mmbench.families.base import Context, Family, ScoreSpec
from mmbench.registry import FAMILIES
from mmbench.render.plots import Plot, curves
from mmbench.render.tables import Board, Column, Num, Table, level_table

NAME = "shift"


@FAMILIES.register(NAME)
class Shift(Family):
    """Corruptions at severities, averaged over draws; mCE against the baseline."""

    name = NAME
    terms = {
        "severity": "Corruption strength, 1 (mild) to 5 (strong); 0 is the clean data.",
        "mean RA": "Mean relative accuracy: corrupted over clean score, averaged over conditions.",
        "conditions": "Number of (corruption, severity, target) conditions averaged.",
    }
    title = "corruptions"
    order = 40
    scores = (
        ScoreSpec("shift_mean_accuracy", "mean value over corruption conditions and the severities "
                  "above 0 that ran", "corruptions", main=True),
        ScoreSpec("shift_relative_robustness", "area under the mean value vs severity/5, clean value "
                  "at 0", "corruptions"),
        ScoreSpec("mce", "mean corruption error against the suite baseline", "corruptions",
                  follows_metric=False, main=True, against_baseline=True),
        ScoreSpec("relative_mce", "relative mCE against the suite baseline, over the conditions that hurt "
                  "the baseline", "corruptions", follows_metric=False, rests_on="relative_mce_conditions",
                  against_baseline=True),
        ScoreSpec("relative_mce_conditions", "how many conditions relative mCE averages (those where the "
                  "baseline's error grows)", "corruptions"),
    )
    composite = "shift_mean_accuracy"

    def corrupted(self, ctx: Context, dataset: str | None = None) -> pd.DataFrame:
        """Its rows above severity 0 (of one ``dataset`` when given): the clean reference left out."""
        rows = ctx.rows(NAME, dataset=dataset)
        return rows[rows["severity"] > 0]

    def compute(self, ctx: Context) -> dict[str, pd.Series]:
        errors = corruption_errors(self.corrupted(ctx), ctx.clean(), ctx.baseline, ctx.scorer)
        if errors.empty:
            return {}
        by_model = errors.groupby(KEY)
        out = {"shift_mean_accuracy": by_model["mean_acc"].mean()}
        if ctx.baseline:
            out["mce"], out["relative_mce"] = by_model["ce"].mean(), by_model["rel_ce"].mean()
            out["relative_mce_conditions"] = by_model["rel_ce"].count().astype(float)
        points = severity_means(self.corrupted(ctx), ctx.clean())
        out["shift_relative_robustness"] = curve_score(points, lambda r: r["severity"] / 5)
        return out

    def errors(self, ctx: Context) -> pd.DataFrame:
        return ctx.once((NAME, "errors"),
                        lambda: corruption_errors(self.corrupted(ctx), ctx.clean(), ctx.baseline, ctx.scorer))

    def tables(self, ctx: Context) -> dict[str, pd.DataFrame]:
        errors = self.errors(ctx)
        return {"corruptions": errors} if not errors.empty else {}

    def boards(self, ctx: Context, dataset: str) -> list[Board]:
        rows = self.corrupted(ctx, dataset)
        if rows.empty:
            return []
        levels = ", ".join(f"{s:g}" for s in sorted(rows["severity"].unique()))
        out = [Board(f"{dataset}: corruptions (severities {levels}, all conditions)",
                     corruption_board(shift_summary(self.errors(ctx)), dataset, ctx))]
        means = severity_means(rows, ctx.clean())
        curve = level_table(means, ["model", "recipe"], ctx.scorer.ascending, zero_is_reference=True,
                            axis="severity")
        if curve:
            out.append(Board(f"{dataset}: {ctx.scorer.name} vs corruption severity (mean over conditions; "
                             "0 is clean, not in the mean)", curve))
        return out

    def plots(self, ctx: Context, out_dir: Path) -> list[Plot]:
        rows = self.corrupted(ctx)
        if rows.empty:
            return []
        per_seed = ["dataset", "model", "recipe", "seed", "target", "severity"]
        mean = rows.groupby(per_seed, as_index=False)["value"].mean()  # over corruptions
        targets = mean[["dataset", "model", "recipe", "seed", "target"]].drop_duplicates()
        clean = ctx.clean_rows().drop(columns=["target"]).merge(targets).assign(severity=0.0)
        points = pd.concat([mean, clean[per_seed + ["value"]]]).rename(columns={"severity": "level"})
        metric = ctx.scorer.name
        return [Plot(curves(g, out_dir, [NAME, dataset, "mean", target], "corruption severity (0: clean)",
                            metric, f"mean over corruptions on {target}, {dataset}", integer_levels=True,
                            colours=ctx.palette),
                     f"{metric} with {target} corrupted, mean over the corruptions, against severity "
                     "(0: clean), mean over seeds; one line per model.", dataset)
                for (dataset, target), g in points.groupby(["dataset", "target"], sort=True)]


def _cell(row: object, column: str) -> Num:
    """A board number; relative mCE says on how many conditions it rests when not all."""
    value, on = getattr(row, column), int(getattr(row, "rel_conditions", 0))
    if column == "rel_mce" and on < int(getattr(row, "conditions", 0)):
        return Num(value, note=f"on {on} of {int(getattr(row, 'conditions'))} conditions")
    return Num(value)


def corruption_board(summary: pd.DataFrame, dataset: str, ctx: Context) -> Table:
    """Clean and mean corrupted value, mean RA, and mCE / relative mCE against the baseline
    (ranked by mCE when there is a baseline, else by the mean corrupted value)."""
    part = summary[summary["dataset"] == dataset]
    by, ascending = ("mce", True) if ctx.baseline else ("mean_acc", ctx.scorer.ascending)
    part = part.sort_values([by, "model"], ascending=[ascending, True], kind="stable")
    cols = ["clean_value", "mean_acc", "mean_ra"] + (["mce", "rel_mce"] if ctx.baseline else [])
    lines = tuple((rank, r.model, r.recipe, *(_cell(r, c) for c in cols), int(r.conditions))
                  for rank, r in enumerate(part.itertuples(), start=1))
    metric, better = ctx.scorer.name, ctx.scorer.higher_is_better
    names = {"clean_value": (f"clean {metric}", better, "clean_accuracy"),
             "mean_acc": (f"corrupted {metric}", better, "shift_mean_accuracy"),
             "mean_ra": ("mean RA", True, "mean RA"), "mce": (f"mCE (vs {ctx.baseline})", False, "mce"),
             "rel_mce": ("relative mCE", False, "relative_mce")}
    columns = (Column("rank", term="rank"), Column("model"), Column("recipe", term="recipe"),
               *(Column(names[c][0], names[c][1], term=names[c][2]) for c in cols),
               Column("conditions", term="conditions"))
    return Table(columns, lines)
