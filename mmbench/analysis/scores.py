"""Leaderboard scores from tidy accuracy rows (formulas: ``docs/metrics.md``).

Every score is a function of the accuracy rows of one (dataset, model, recipe), averaged over
training seeds first, and declares whether higher is better. :func:`compute_scores` returns one
tidy row per (dataset, model, recipe, score); :func:`score_intervals` recomputes them on paired
bootstrap replicates of every cell's accuracy, so each score (and each difference between two
models) has a 95% interval.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from mmbench.analysis.corruption import ACCURACY, corruption_errors, natural_summary
from mmbench.analysis.direction import ScoreMetric

KEY = ["dataset", "model", "recipe"]
FAMILIES = ("adversarial", "dropout", "shift")


@dataclass(frozen=True)
class Score:
    name: str
    family: str
    higher_is_better: bool
    description: str


SCORES: tuple[Score, ...] = (
    Score("clean_accuracy", "clean", True, "accuracy on the clean test split"),
    Score("adv_robust_accuracy", "adversarial", True, "mean over (target, eps) of the worst attack's accuracy"),
    Score("adv_relative_robustness", "adversarial", True, "area under accuracy vs eps (real spacing), worst attack, / eps span"),
    Score("missing_worst_subset", "dropout", True, "lowest accuracy over non-empty kept subsets and imputations"),
    Score("missing_mean_rate", "dropout", True, "mean accuracy over random-dropout rates and imputations"),
    Score("missing_relative_robustness", "dropout", True, "area under accuracy vs dropout rate (real spacing) / rate span"),
    Score("missing_relative_robustness_fixed_step", "dropout", True, "MultiBench's variant: trapezoid area with a fixed 0.1 step between consecutive levels"),
    Score("shift_mean_accuracy", "shift", True, "mean accuracy over corruption conditions and severities 1-5"),
    Score("shift_relative_robustness", "shift", True, "area under accuracy vs severity/5 (mean over conditions)"),
    Score("mce", "shift", False, "mean corruption error against the suite baseline"),
    Score("relative_mce", "shift", False, "relative mCE against the suite baseline"),
    Score("ood_accuracy", "shift", True, "accuracy on the held-out groups other than the in-distribution bins"),
    Score("worst_group_accuracy", "shift", True, "lowest accuracy over in-distribution test and every held-out group"),
    Score("effective_robustness", "composite", True, "composite minus reference composite, minus the clean-accuracy difference"),
    Score("composite", "composite", True, "mean of the family robustness scores present (adversarial, dropout, shift)"),
)
BY_NAME = {s.name: s for s in SCORES}
#: the score each family contributes to the composite (equal weights over the families present)
COMPOSITE_PARTS = {"adversarial": "adv_robust_accuracy", "dropout": "missing_mean_rate",
                   "shift": "shift_mean_accuracy"}


def _seed_mean(rows: pd.DataFrame, extra: list[str]) -> pd.DataFrame:
    return rows.groupby(KEY + extra, as_index=False)["value"].mean()


def area_under(levels: np.ndarray, acc: np.ndarray, fixed_step: float | None = None) -> float:
    """Trapezoid area of accuracy vs level divided by the level span (so in accuracy units);
    ``fixed_step``: MultiBench's variant, consecutive levels assumed ``fixed_step`` apart and
    the area not normalised."""
    order = np.argsort(levels)
    levels, acc = levels[order], acc[order]
    if len(levels) < 2:
        return float(acc[0]) if len(acc) else float("nan")
    if fixed_step is not None:
        return float(np.sum((acc[1:] + acc[:-1]) / 2 * fixed_step))
    trapezoid = getattr(np, "trapezoid", None) or np.trapz  # numpy < 2 has only trapz
    return float(trapezoid(acc, levels) / (levels[-1] - levels[0]))


def _curve_score(rows: pd.DataFrame, level: Callable[[pd.Series], pd.Series], fixed_step: float | None = None) -> pd.Series:
    curve = rows.assign(level=level(rows)).groupby(KEY + ["level"])["value"].mean().reset_index()
    areas = {key: area_under(g["level"].to_numpy(), g["value"].to_numpy(), fixed_step)
             for key, g in curve.groupby(KEY)}
    return pd.Series(areas, dtype=float).rename_axis(KEY)


def _adversarial(acc: pd.DataFrame, metric: ScoreMetric) -> dict[str, pd.Series]:
    rows = _seed_mean(acc[acc["family"] == "adversarial"], ["perturbation", "target", "severity"])
    if rows.empty:
        return {}
    worst = metric.worst(rows.groupby(KEY + ["target", "severity"], as_index=False)["value"])
    clean = _seed_mean(acc[acc["family"] == "clean"], []).assign(severity=0.0)
    with_clean = pd.concat([worst, clean.merge(worst[KEY + ["target"]].drop_duplicates(), on=KEY)])
    return {"adv_robust_accuracy": worst.groupby(KEY)["value"].mean(),
            "adv_relative_robustness": _curve_score(with_clean, lambda r: r["severity"])}


def _dropout(acc: pd.DataFrame, metric: ScoreMetric) -> dict[str, pd.Series]:
    rows = acc[acc["family"] == "dropout"]
    out = {}
    subsets = _seed_mean(rows[rows["perturbation"].str.startswith("missing-") & (rows["target"] != "all")],
                         ["perturbation", "target"])
    if not subsets.empty:
        out["missing_worst_subset"] = metric.worst(subsets.groupby(KEY)["value"])
    rates = _seed_mean(rows[rows["perturbation"].str.startswith("random-")], ["perturbation", "severity"])
    if not rates.empty:
        out["missing_mean_rate"] = rates.groupby(KEY)["value"].mean()
        out["missing_relative_robustness"] = _curve_score(rates, lambda r: r["severity"])
        out["missing_relative_robustness_fixed_step"] = _curve_score(rates, lambda r: r["severity"], 0.1)
    return out


def _shift(frame: pd.DataFrame, baseline: str, metric: ScoreMetric) -> dict[str, pd.Series]:
    out = {}
    errors = corruption_errors(frame, baseline, metric)
    if not errors.empty:
        by_model = errors.groupby(KEY)
        out["shift_mean_accuracy"] = by_model["mean_acc"].mean()
        if baseline:
            out["mce"], out["relative_mce"] = by_model["ce"].mean(), by_model["rel_ce"].mean()
        acc = metric.rows(frame)
        rows = acc[(acc["family"] == "shift") & (acc["perturbation"] != "natural")]
        clean = _seed_mean(acc[acc["family"] == "clean"], []).assign(severity=0.0)
        clean = clean.merge(rows[KEY].drop_duplicates(), on=KEY)  # where there are corruptions
        out["shift_relative_robustness"] = _curve_score(pd.concat([rows, clean]), lambda r: r["severity"] / 5)
    natural = natural_summary(frame, metric)
    if not natural.empty:
        indexed = natural.set_index(KEY)
        held_out = [c for c in indexed.columns if c not in ("id", "worst_group") and not c.startswith("q")]
        out["worst_group_accuracy"] = indexed["worst_group"]
        if held_out:
            out["ood_accuracy"] = indexed[held_out].mean(axis=1)
    return out


def compute_scores(frame: pd.DataFrame, reference: str = "", metric: ScoreMetric = ACCURACY) -> pd.DataFrame:
    """One row per (dataset, model, recipe, score) with its value (NaN-free: absent scores are
    left out). ``reference``: the suite's baseline model, for mCE and effective robustness;
    ``metric``: the suite's ``score_metric`` (the scores named after accuracy read it)."""
    acc = metric.rows(frame)
    parts = {"clean_accuracy": _seed_mean(acc[acc["family"] == "clean"], []).set_index(KEY)["value"],
             **_adversarial(acc, metric), **_dropout(acc, metric), **_shift(frame, reference, metric)}
    table = pd.DataFrame(parts)
    present = [COMPOSITE_PARTS[f] for f in FAMILIES if COMPOSITE_PARTS[f] in table]
    if present:
        table["composite"] = table[present].mean(axis=1)
        if reference and "clean_accuracy" in table:
            table["effective_robustness"] = _effective(table, reference)
    long = table.rename_axis(KEY).reset_index().melt(id_vars=KEY, var_name="score", value_name="value")
    return long.dropna(subset=["value"]).reset_index(drop=True)


def _effective(table: pd.DataFrame, reference: str) -> pd.Series:
    """(composite - reference composite) - (clean - reference clean), same dataset and recipe."""
    ref = table.xs(reference, level="model")[["composite", "clean_accuracy"]]
    aligned = ref.reindex(pd.MultiIndex.from_arrays([table.index.get_level_values("dataset"),
                                                     table.index.get_level_values("recipe")]))
    return ((table["composite"].to_numpy() - aligned["composite"].to_numpy())
            - (table["clean_accuracy"].to_numpy() - aligned["clean_accuracy"].to_numpy()))


def score_replicates(frame: pd.DataFrame, reps: dict[str, np.ndarray], reference: str = "",
                     metric: ScoreMetric = ACCURACY) -> pd.DataFrame:
    """Every score on every paired bootstrap replicate: columns of :func:`compute_scores` plus
    ``b`` (``reps``: cell key -> replicates of ``metric``; ``frame`` needs the ``cell`` column).
    Rows without replicates keep their value. Empty when there are no replicates."""
    acc = metric.rows(frame).reset_index(drop=True)
    n = len(next(iter(reps.values()))) if reps else 0
    if not n or "cell" not in acc:
        return pd.DataFrame(columns=KEY + ["score", "value", "b"])
    matrix = np.stack([reps.get(c, np.full(n, np.nan)) for c in acc["cell"]])
    values = np.where(np.isnan(matrix), acc["value"].to_numpy()[:, None], matrix)  # [rows, n]
    # all replicates in one pass: replicate b is folded into the recipe ("r#b"), so every
    # grouping, and the pairing with the reference model (same dataset and recipe), holds per b
    stacked = pd.concat([acc.assign(value=values[:, b], recipe=acc["recipe"] + f"#{b}") for b in range(n)])
    runs = compute_scores(stacked, reference, metric)
    split = runs["recipe"].str.rsplit("#", n=1)
    return runs.assign(recipe=split.str[0], b=split.str[1].astype(int))


def score_intervals(frame: pd.DataFrame, reps: dict[str, np.ndarray], reference: str = "",
                    level: float = 0.95, runs: pd.DataFrame | None = None,
                    metric: ScoreMetric = ACCURACY) -> pd.DataFrame:
    """:func:`compute_scores` with ``ci_low``/``ci_high``: percentiles of the scores over the
    paired bootstrap replicates (no interval where there are none; ``runs``: the output of
    :func:`score_replicates` when already computed)."""
    point = compute_scores(metric.rows(frame), reference, metric)
    runs = score_replicates(frame, reps, reference, metric) if runs is None else runs
    if runs.empty:
        return point.assign(ci_low=np.nan, ci_high=np.nan)
    bounds = runs.groupby(KEY + ["score"])["value"].quantile([(1 - level) / 2, (1 + level) / 2])
    bounds = bounds.unstack().set_axis(["ci_low", "ci_high"], axis=1).reset_index()
    return point.merge(bounds, on=KEY + ["score"], how="left")
