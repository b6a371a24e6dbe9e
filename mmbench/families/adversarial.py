"""``adversarial``: attacks per modality, per subset and jointly, over an eps grid.

Scores (docs/metrics.md): the worst attack's value per (target, eps), averaged
(``adv_robust_accuracy``, the composite part), and the area under it against eps
(``adv_relative_robustness``). With ``ensemble: true`` the per-row worst case over the attacks of
a (target, eps) is derived from the attacks' stored outcomes: a row counts as robust only if
every reported attack failed on it, so it is never above any of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from mmbench.stats.curves import KEY, curve_score, seed_mean
from mmbench.stats.sanity import CheckedMetric, DatasetFacts, sanity_checks
from mmbench.families.base import Context, Family, ScoreSpec
from mmbench.hashing import content_hash
from mmbench.metrics.outcomes import Samples
from mmbench.perturb.adversarial import TOKEN_FAMILY
from mmbench.registry import FAMILIES
from mmbench.render.plots import Plot, curves
from mmbench.render.tables import Board, Column, Num, Table, half_width
from mmbench.store.rows import CellFacts

NAME = "adversarial"
WORST = "worst"
#: cells of one ensemble: same model, seed, rows, target, eps, norm and attack list
ENSEMBLE_KEY = ("suite", "dataset", "model", "recipe", "seed", "target", "severity", "split", "rows")


@FAMILIES.register(NAME)
class Adversarial(Family):
    """Attacks per modality, subset and jointly over eps; the per-row worst case derived."""

    name = NAME
    terms = {
        "target@eps": "Worst attack on the target modality (or all jointly) at perturbation budget eps, "
                      "in the data's normalised units.",
        "eps": "The attack budget: the largest perturbation norm allowed, in normalised units.",
    }
    title = "adversarial attacks"
    order = 10
    scores = (
        ScoreSpec("adv_robust_accuracy", "mean over (target, eps) of the worst attack's value",
                  "adversarial", main=True, headline="under attack", clean_on="adv_clean_accuracy"),
        ScoreSpec("adv_relative_robustness", "area under the worst attack's value vs eps (real "
                  "spacing, clean value at eps 0) / eps span", "adversarial"),
        ScoreSpec("adv_clean_accuracy", "the clean value on the rows the attacks evaluated (max_rows), "
                  "averaged like adv_robust_accuracy: the reference it is compared with", "adversarial"),
    )
    composite = "adv_robust_accuracy"

    def compute(self, ctx: Context) -> dict[str, pd.Series]:
        attacked = ctx.rows(NAME)
        rows = seed_mean(attacked, ["perturbation", "target", "severity", "rows"])
        if rows.empty:
            return {}
        worst = ctx.scorer.worst(rows.groupby(KEY + ["target", "severity", "rows"], as_index=False)["value"])
        clean = seed_mean(ctx.clean_on(attacked, ("target",)), ["target", "rows"]).assign(severity=0.0)
        with_clean = pd.concat([worst, clean])  # eps 0: clean on the rows each target was attacked on
        reference = worst[[*KEY, "target", "severity", "rows"]].merge(clean.drop(columns="severity"),
                                                                         on=[*KEY, "target", "rows"])
        return {"adv_robust_accuracy": worst.groupby(KEY)["value"].mean(),
                "adv_relative_robustness": curve_score(with_clean, lambda r: r["severity"]),
                "adv_clean_accuracy": reference.groupby(KEY)["value"].mean()}

    def derive(self, facts: Mapping[str, CellFacts],
               samples: Mapping[str, Samples]) -> dict[str, tuple[CellFacts, Samples]]:
        groups: dict[tuple, list[str]] = {}
        for key, f in facts.items():
            if f.family == NAME and f.facts.get("ensemble") and key in samples:
                group = tuple(getattr(f, k) for k in ENSEMBLE_KEY) + (f.facts["norm"], f.facts["ensemble"])
                groups.setdefault(group, []).append(key)
        out = {}
        for members in groups.values():
            order = facts[members[0]].facts["ensemble"].split(",")
            members = sorted(members, key=lambda k: order.index(facts[k].facts["attack"]))
            if len(members) == len(order):
                out["worst:" + content_hash(members)] = worst_case(members, facts, samples)
        return out

    def checks(self, ctx: Context) -> pd.DataFrame | None:
        """Carlini et al.'s checks on accuracy, or on the score metric in its direction where
        there is no accuracy (regression, multilabel)."""
        reading = CheckedMetric()
        rows = ctx.rows(NAME, "accuracy")
        if rows.empty:
            reading = CheckedMetric(ctx.scorer.name, ctx.scorer.higher_is_better)
            rows = ctx.rows(NAME, reading.metric)
        if rows.empty:
            return None
        info = {d: DatasetFacts(ctx.n_classes.get(d, 2), ctx.continuous.get(d, True)) for d in ctx.datasets()}
        return sanity_checks(rows, info, ctx.clean_on(rows, metric=reading.metric), reading)

    def boards(self, ctx: Context, dataset: str) -> list[Board]:
        every = ctx.unmasked_rows(NAME, dataset)  # cells not read keep their column
        grid = sorted(set(zip(every["target"], every["severity"], strict=True)))
        return self.board(ctx, dataset, lambda rows: robust_board(rows, ctx, grid),
                          f"{dataset}: robust {ctx.scorer.name} (worst attack per target@eps)")

    def reading(self, ctx: Context, dataset: str) -> str | None:
        """The weakest modality: the one whose worst attack alone, at the largest eps, leaves
        the least (mean over models)."""
        rows = ctx.rows(NAME, dataset=dataset)
        single = rows[rows["target"].isin(ctx.players.get(dataset, ()))]
        if single.empty:
            return None
        top = single[single["severity"] == single["severity"].max()]
        worst = ctx.scorer.worst(top.groupby(["model", "recipe", "target"])["value"]).groupby("target").mean()
        target = worst.idxmin() if ctx.scorer.higher_is_better else worst.idxmax()
        value, name = f"{worst[target]:.3f}", ctx.scorer.name
        effect = f"leaves {value} {name}" if ctx.scorer.higher_is_better else f"raises {name} to {value}"
        texts = ctx.frame[(ctx.frame["family"] == TOKEN_FAMILY) & (ctx.frame["dataset"] == dataset)]
        which = "continuous modality (token attacks are read apart: other units)" if len(texts) else "modality"
        return (f"The weakest {which} is {target}: attacking it alone at eps {top['severity'].iloc[0]:g} "
                f"{effect} on average over the models.")

    def plots(self, ctx: Context, out_dir: Path) -> list[Plot]:
        rows = ctx.rows(NAME)
        if rows.empty:
            return []
        per_seed = ["dataset", "model", "recipe", "seed", "target", "severity"]
        worst = ctx.scorer.worst(rows.groupby(per_seed, as_index=False)["value"])
        clean = ctx.clean_on(rows, ("target",)).assign(severity=0.0)  # on the attacked rows
        points = pd.concat([worst, clean[per_seed + ["value"]]]).rename(columns={"severity": "level"})
        metric = ctx.scorer.name
        return [Plot(curves(g, out_dir, [NAME, dataset, "worst_attack", target], "eps (normalised units)",
                            metric, f"worst attack on {target}, {dataset}", colours=ctx.palette),
                     f"{metric} under the strongest attack on {target} as its budget eps grows (eps 0: clean), "
                     "mean over seeds; one line per model.", dataset)
                for (dataset, target), g in points.groupby(["dataset", "target"], sort=True)]


def worst_case(members: list[str], facts: Mapping[str, CellFacts],
               samples: Mapping[str, Samples]) -> tuple[CellFacts, Samples]:
    """The per-row worst case of attack cells over the same rows: for each row, the outcome of
    the member whose outcome is worst on it (:attr:`~mmbench.metrics.outcomes.Samples.badness`:
    an attack that fooled it with the lowest true-class probability, else the lowest true-class
    probability; the largest error on a regression or multilabel task). Its value in every
    metric is also bounded by the members' (:func:`~mmbench.stats.bootstrap.bounded`), so it is
    never better than a reported attack."""
    combined = per_row_worst(members, samples)
    lead = facts[members[0]]
    names = lead.facts["ensemble"]
    derived = replace(lead, perturbation=f"{WORST}[{names}]-{lead.facts['norm']}",
                      facts={**lead.facts, "attack": WORST})
    return derived, combined


def per_row_worst(members: list[str], samples: Mapping[str, Samples]) -> Samples:
    """For each row, the outcome of the member cell (same rows) that is worst on it
    (:attr:`~mmbench.metrics.outcomes.Samples.badness`), bounded by the members in every metric."""
    cells = [samples[k] for k in members]
    pick = np.argmax(np.stack([c.badness for c in cells], axis=1), axis=1)
    rows = np.arange(len(pick))

    def chosen(name: str) -> np.ndarray | None:
        arrays = [getattr(c, name) for c in cells]
        return None if any(a is None for a in arrays) else np.stack(arrays, axis=1)[rows, pick]

    first = cells[0]
    return Samples(first.sample_set, chosen("preds"), first.labels, chosen("probs"), chosen("full"),
                   first.draws, row_ids=first.ids, bounded_by=tuple(members), task=first.task,
                   outputs=chosen("outputs"), targets=first.targets)


def robust_board(rows: pd.DataFrame, ctx: Context, grid: list[tuple[str, float]] | None = None) -> Table | None:
    """For each target@eps, the worst attack's value (mean over seeds) ± its interval's
    half-width; models ranked by their mean over the columns. Columns are grouped by eps
    (``grid``: every (target, eps) to show, also those no model has a value for)."""
    if rows.empty:
        return None
    rows = rows.assign(hw=half_width(rows))
    per_attack = rows.groupby(["model", "recipe", "target", "severity", "perturbation"])[["value", "hw"]].mean()
    by_case = per_attack.groupby(level=["model", "recipe", "target", "severity"])["value"]
    worst = per_attack.loc[by_case.idxmin() if ctx.scorer.higher_is_better else by_case.idxmax()].reset_index()
    pivot = {"index": ["model", "recipe"], "columns": ["target", "severity"], "aggfunc": "first"}
    table = worst.pivot_table(values="value", **pivot)
    half = worst.pivot_table(values="hw", dropna=False, **pivot)
    if grid:
        columns = pd.MultiIndex.from_tuples(sorted(set(grid) | set(table.columns)))
        table, half = table.reindex(columns=columns), half.reindex(columns=columns)
    order = table.mean(axis=1).sort_values(ascending=ctx.scorer.ascending, kind="stable").index
    lines = tuple((rank, model, recipe, *(Num(table.loc[(model, recipe), c], half.loc[(model, recipe)].get(c))
                                          for c in table.columns))
                  for rank, (model, recipe) in enumerate(order, start=1))
    better = ctx.scorer.higher_is_better
    columns = (Column("rank", term="rank"), Column("model"), Column("recipe", term="recipe"),
               *(Column(f"{t}@{e:g}", better, group=f"eps {e:g}", short=t, term="target@eps")
                 for t, e in table.columns))
    return Table(columns, lines, "eps")
