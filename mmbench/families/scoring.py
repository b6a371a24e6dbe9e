"""Scores of every registered family, the composite, effective robustness, and their paired
bootstrap intervals (formulas: docs/metrics.md).

Each family computes its scores from the score metric's rows of one (dataset, model, recipe);
the ``composite`` is the mean of the composite parts of the families present (each family
declares one; a model lacking a part that another model of its dataset has gets no
composite), and ``effective_robustness`` compares it with the suite's baseline. Intervals
recompute everything on paired bootstrap replicates of every cell's score-metric value.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import numpy as np
import pandas as pd

from mmbench.stats.bootstrap import LEVEL
from mmbench.stats.curves import KEY
from mmbench.families.base import Context, Family, ScoreSpec
from mmbench.registry import FAMILIES

COMPOSITE = ScoreSpec("composite", "mean of the composite parts of the families present", "composite",
                      main=True)
EFFECTIVE = ScoreSpec("effective_robustness", "composite minus the baseline's composite, minus the "
                      "clean difference", "effective-robustness", main=True,
                      against_baseline=True)


def families() -> list[Family]:
    """Every registered family, in board order."""
    found = [entry.obj() for entry in FAMILIES.entries()]
    return sorted(found, key=lambda f: (f.order, f.name))


def score_specs(found: list[Family] | None = None) -> list[ScoreSpec]:
    """Every score (families' in board order, then the composite and effective robustness)."""
    return [s for f in (found or families()) for s in f.scores] + [COMPOSITE, EFFECTIVE]


def role(found: list[Family], flag: str) -> ScoreSpec | None:
    """The first score of ``found`` whose :class:`ScoreSpec` field ``flag`` is set (``reference``:
    the clean score; ``headline``: the score the reading calls robust), or None."""
    return next((s for s in score_specs(found) if getattr(s, flag)), None)


def against_baseline(found: list[Family] | None = None) -> frozenset[str]:
    """The scores measured against the suite's baseline model."""
    return frozenset(s.name for s in score_specs(found) if s.against_baseline)


def composite_parts(found: list[Family], present: set[str]) -> list[str]:
    """The families' composite scores among ``present`` scores, in board order."""
    return [f.composite for f in found if f.composite and f.composite in present]


def compute_scores(ctx: Context, found: list[Family] | None = None) -> pd.DataFrame:
    """One row per (dataset, model, recipe, score) with its value (absent scores left out)."""
    found = [f for f in (found or families()) if f.present(ctx)]
    parts: dict[str, pd.Series] = {}
    for family in found:
        parts.update(family.compute(ctx))
    table = pd.DataFrame(parts)
    present = composite_parts(found, set(table.columns))
    if present and len(table):
        table[COMPOSITE.name] = table[present].mean(axis=1).mask(incomplete(table, present))
        reference = role(found, "reference")
        if ctx.baseline and reference is not None and reference.name in table:
            table[EFFECTIVE.name] = _effective(table, ctx.baseline, reference.name)
    if table.empty:
        return pd.DataFrame(columns=KEY + ["score", "value"])
    long = table.rename_axis(KEY).reset_index().melt(id_vars=KEY, var_name="score", value_name="value")
    return long.dropna(subset=["value"]).reset_index(drop=True)


def incomplete(table: pd.DataFrame, parts: list[str]) -> pd.Series:
    """Rows that lack a composite part another model of the same dataset has (a perturbation
    restricted to some models): their composite would average other parts, so they get none."""
    dataset = table.index.get_level_values("dataset")
    have = table[parts].notna()
    expected = have.groupby(dataset).transform("any")
    return (expected & ~have).any(axis=1)


def _effective(table: pd.DataFrame, reference: str, clean: str) -> pd.Series:
    """(composite - reference composite) - (clean - reference clean), same dataset and recipe
    (``reference``: the baseline model; ``clean``: the clean score)."""
    if reference not in table.index.get_level_values("model"):
        return pd.Series(np.nan, index=table.index)
    ref = table.xs(reference, level="model")[[COMPOSITE.name, clean]]
    aligned = ref.reindex(pd.MultiIndex.from_arrays([table.index.get_level_values("dataset"),
                                                     table.index.get_level_values("recipe")]))
    return ((table[COMPOSITE.name].to_numpy() - aligned[COMPOSITE.name].to_numpy())
            - (table[clean].to_numpy() - aligned[clean].to_numpy()))


def score_replicates(ctx: Context, reps: dict[str, np.ndarray], found: list[Family] | None = None) -> pd.DataFrame:
    """Every score on every paired bootstrap replicate: the columns of :func:`compute_scores`
    plus ``b`` (``reps``: cell key -> replicates of the score metric; the frame needs its
    ``cell`` column). Rows without replicates keep their value; empty without replicates."""
    rows = ctx.frame[ctx.frame["metric"] == ctx.scorer.name].reset_index(drop=True)
    n = len(next(iter(reps.values()))) if reps else 0
    if not n or "cell" not in rows:
        return pd.DataFrame(columns=KEY + ["score", "value", "b"])
    matrix = np.stack([reps.get(c, np.full(n, np.nan)) for c in rows["cell"]])
    values = np.where(np.isnan(matrix), rows["value"].to_numpy()[:, None], matrix)  # [rows, n]
    # all replicates in one pass: replicate b is folded into the recipe ("r#b"), so every
    # grouping, and the pairing with the reference model (same dataset and recipe), holds per b
    stacked = pd.concat([rows.assign(value=values[:, b], recipe=rows["recipe"] + f"#{b}") for b in range(n)])
    runs = compute_scores(dataclasses.replace(ctx, frame=stacked, memo={}), found)
    split = runs["recipe"].str.rsplit("#", n=1)
    return runs.assign(recipe=split.str[0], b=split.str[1].astype(int))


#: the largest share of bootstrap replicates in which a score may be undefined (a ratio over a
#: zero, a relative mCE whose conditions change) and still get an interval: one tail of the 95%
#: interval; past it the percentiles would describe only the replicates where it exists
MAX_UNDEFINED = 0.025


def with_intervals(point: pd.DataFrame, runs: pd.DataFrame, replicates: int = 0,
                   rests_on: Mapping[str, str] | None = None) -> pd.DataFrame:
    """``point`` scores with ``ci_low``/``ci_high`` (percentiles over the replicates ``runs``) and
    ``undefined``: the share of the ``replicates`` in which the score does not exist (none, or
    the count it ``rests_on`` differs from the value's); past :data:`MAX_UNDEFINED` no interval."""
    if runs.empty:
        return point.assign(ci_low=np.nan, ci_high=np.nan, undefined=np.nan)
    defined = _conditional(runs, point, rests_on or {}).dropna(subset=["value"])
    group = defined.groupby(KEY + ["score"])["value"]
    bounds = group.quantile([(1 - LEVEL) / 2, (1 + LEVEL) / 2]).unstack()
    bounds = bounds.set_axis(["ci_low", "ci_high"], axis=1).assign(defined=group.size()).reset_index()
    out = point.merge(bounds, on=KEY + ["score"], how="left")
    total = replicates or int(runs["b"].max()) + 1
    out["undefined"] = 1.0 - out.pop("defined").fillna(0.0) / total
    out.loc[out["undefined"] > MAX_UNDEFINED, ["ci_low", "ci_high"]] = np.nan
    return out


def _conditional(runs: pd.DataFrame, point: pd.DataFrame, rests_on: Mapping[str, str]) -> pd.DataFrame:
    """``runs`` with a score's replicate set to NaN where the count it rests on differs from
    the count behind its value (the replicate averages other conditions: another quantity)."""
    runs = runs.copy()
    for score, count in rests_on.items():
        want = point[point["score"] == count].set_index(KEY)["value"]
        have = runs[runs["score"] == count].set_index(KEY + ["b"])["value"]
        mine = runs["score"] == score
        keys = pd.MultiIndex.from_frame(runs.loc[mine, KEY + ["b"]])
        same = have.reindex(keys).to_numpy() == want.reindex(keys.droplevel("b")).to_numpy()
        runs.loc[mine, "value"] = runs.loc[mine, "value"].where(same)
    return runs
