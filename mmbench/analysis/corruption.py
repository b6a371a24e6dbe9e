"""Corruption robustness scores from tidy rows (Hendrycks & Dietterich 2019), and natural shift.

A *condition* c is one (corruption, target) pair of the ``shift`` family. With E = 1 - accuracy
(mean over training seeds) at severities s = 1..5 and E_clean the clean error:

- RA_c = mean_s acc_{s,c} / acc_clean (robust accuracy relative to clean; 1 = unaffected);
- CE_c = sum_s E_{s,c} / sum_s E^base_{s,c} against the suite's ``baseline`` model (same
  dataset and recipe), and mCE = mean_c CE_c;
- relative CE_c = sum_s (E_{s,c} - E_clean) / sum_s (E^base_{s,c} - E^base_clean), and relative
  mCE its mean (NaN for a condition that does not hurt the baseline at all).

Natural shift: accuracy on the in-distribution test split (``id``), on each held-out group, and
the worst group (the minimum over all of them).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mmbench.analysis.direction import ScoreMetric

ACCURACY = ScoreMetric()
KEY = ["dataset", "model", "recipe"]
CONDITION = KEY + ["perturbation", "target"]


def _corrupted(frame: pd.DataFrame, metric: ScoreMetric = ACCURACY) -> pd.DataFrame:
    acc = metric.rows(frame)
    return acc[(acc["family"] == "shift") & (acc["perturbation"] != "natural") & (acc["severity"] > 0)]


def clean_accuracy(frame: pd.DataFrame, metric: ScoreMetric = ACCURACY) -> pd.Series:
    """Clean accuracy (or ``metric``) per (dataset, model, recipe), mean over seeds: the
    ``clean`` rows, else the shift rows at severity 0."""
    acc = metric.rows(frame)
    rows = acc[acc["family"] == "clean"]
    if rows.empty:
        rows = acc[(acc["family"] == "shift") & (acc["severity"] == 0) & (acc["perturbation"] != "natural")]
    return rows.groupby(KEY)["value"].mean()


def corruption_errors(frame: pd.DataFrame, baseline: str = "", metric: ScoreMetric = ACCURACY) -> pd.DataFrame:
    """One row per condition: clean and mean corrupted accuracy, RA, the error sum and, with a
    ``baseline``, CE and relative CE (``metric``: what is read instead of accuracy)."""
    per_level = _corrupted(frame, metric).groupby(CONDITION + ["severity"])["value"].mean()
    if per_level.empty:
        return pd.DataFrame(columns=CONDITION + ["clean", "mean_acc", "ra", "errors", "ce", "rel_ce"])
    table = per_level.groupby(CONDITION).agg(mean_acc="mean", levels="count").reset_index()
    table["errors"] = metric.error(per_level).groupby(CONDITION).sum().to_numpy()
    clean = clean_accuracy(frame, metric)
    table["clean"] = [clean.get(tuple(k), np.nan) for k in table[KEY].itertuples(index=False)]
    table["ra"] = table["mean_acc"] / table["clean"]
    table["ce"], table["rel_ce"] = np.nan, np.nan
    if baseline:
        base = table[table["model"] == baseline].set_index(["dataset", "recipe", "perturbation", "target"])
        ref = base.reindex(pd.MultiIndex.from_frame(table[["dataset", "recipe", "perturbation", "target"]]))
        table["ce"] = table["errors"].to_numpy() / ref["errors"].to_numpy()
        own = table["errors"] - table["levels"] * metric.error(table["clean"])
        theirs = ref["errors"].to_numpy() - ref["levels"].to_numpy() * metric.error(ref["clean"].to_numpy())
        with np.errstate(divide="ignore", invalid="ignore"):
            table["rel_ce"] = np.where(theirs > 0, own.to_numpy() / np.where(theirs > 0, theirs, 1), np.nan)
    return table[CONDITION + ["clean", "mean_acc", "ra", "errors", "levels", "ce", "rel_ce"]]


def shift_summary(frame: pd.DataFrame, baseline: str = "", metric: ScoreMetric = ACCURACY) -> pd.DataFrame:
    """Per (dataset, model, recipe): clean accuracy, mean corrupted accuracy, mean RA, and with
    a baseline mCE and relative mCE (means over conditions)."""
    table = corruption_errors(frame, baseline, metric)
    out = table.groupby(KEY).agg(clean=("clean", "first"), mean_acc=("mean_acc", "mean"),
                                 mean_ra=("ra", "mean"), mce=("ce", "mean"), rel_mce=("rel_ce", "mean"),
                                 conditions=("ce", "size"))
    return out.reset_index()


def severity_means(frame: pd.DataFrame, metric: ScoreMetric = ACCURACY) -> pd.DataFrame:
    """Tidy rows of the mean ``metric`` over all conditions (and seeds) per model and
    severity, as ``perturbation: mean``, ``target: all conditions``; severity 0 from the clean
    rows."""
    rows = _corrupted(frame, metric)
    if rows.empty:
        return frame.iloc[0:0]
    mean = rows.groupby(KEY + ["severity"], as_index=False)["value"].mean()
    clean = clean_accuracy(frame, metric).rename("value").reset_index().assign(severity=0.0)
    clean = clean.merge(mean[KEY].drop_duplicates(), on=KEY)  # only where there are corruptions
    mean = pd.concat([clean, mean], ignore_index=True)
    return mean.assign(family="shift", perturbation="mean", target="all conditions", metric=metric.name)


def natural_summary(frame: pd.DataFrame, metric: ScoreMetric = ACCURACY) -> pd.DataFrame:
    """Per (dataset, model, recipe): accuracy (or ``metric``) on ``id`` and each group
    (columns), and ``worst_group`` (the worst of them), means over seeds."""
    acc = metric.rows(frame)
    rows = acc[(acc["family"] == "shift") & (acc["perturbation"] == "natural")]
    if rows.empty:
        return pd.DataFrame(columns=KEY + ["id", "worst_group"])
    table = rows.pivot_table(index=KEY, columns="target", values="value", aggfunc="mean")
    table["worst_group"] = metric.worst_of(table)
    groups = [c for c in table.columns if c not in ("id", "worst_group")]
    return table[["id", *groups, "worst_group"]].reset_index().rename_axis(columns=None)
