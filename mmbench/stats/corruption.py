"""Corruption robustness (Hendrycks & Dietterich 2019) and natural-shift summaries from rows.

A *condition* c is one (corruption, target). With E = 1 - accuracy (mean over training seeds,
and over draws) at the severities s > 0 that ran, and E_clean the clean error:

- RA_c = mean_s acc_{s,c} / acc_clean (robust accuracy relative to clean; 1 = unaffected);
- CE_c = sum_s E_{s,c} / sum_s E^base_{s,c} against the suite's ``baseline`` model (same
  dataset and recipe), and mCE = mean_c CE_c;
- relative CE_c = sum_s (E_{s,c} - E_clean) / sum_s (E^base_{s,c} - E^base_clean), and relative
  mCE its mean; a condition that does not hurt the baseline (its error gain is at most
  :data:`UNHURT`, i.e. zero up to float rounding) has no relative CE, and one the baseline
  makes no error on has no CE.

Natural shift: the value on the in-distribution test split (``id``), on each held-out group,
and the worst group. Every function takes the rows already selected (a family's own rows of
the score metric) and the clean value per (dataset, model, recipe); none looks at names.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mmbench.stats.curves import KEY
from mmbench.stats.direction import ScoreMetric

ACCURACY = ScoreMetric()
CONDITION = KEY + ["corruption", "target"]
#: an error gain this small is float rounding (sums of fractions of at most 1e6 rows), not harm
UNHURT = 1e-9


def corruption_errors(rows: pd.DataFrame, clean: pd.Series, baseline: str = "",
                      metric: ScoreMetric = ACCURACY) -> pd.DataFrame:
    """One row per condition: clean and mean corrupted value, RA, the error sum and, with a
    ``baseline``, CE and relative CE. ``rows``: corruption rows (column ``corruption``) at
    severities > 0; ``clean``: clean value per (dataset, model, recipe)."""
    columns = CONDITION + ["clean_value", "mean_acc", "ra", "errors", "levels", "ce", "rel_ce"]
    per_level = rows.groupby(CONDITION + ["severity"])["value"].mean()
    if per_level.empty:
        return pd.DataFrame(columns=columns)
    table = per_level.groupby(CONDITION).agg(mean_acc="mean", levels="count").reset_index()
    table["errors"] = metric.error(per_level).groupby(CONDITION).sum().to_numpy()
    table["clean_value"] = [clean.get(tuple(k), np.nan) for k in table[KEY].itertuples(index=False)]
    table["ra"] = table["mean_acc"] / table["clean_value"]
    table["ce"], table["rel_ce"] = np.nan, np.nan
    if baseline:
        _against(table, baseline, metric)
    return table[columns]


def _against(table: pd.DataFrame, baseline: str, metric: ScoreMetric) -> None:
    """CE and relative CE of every model against ``baseline`` (same dataset, recipe, condition)."""
    index = ["dataset", "recipe", "corruption", "target"]
    base = table[table["model"] == baseline].set_index(index)
    ref = base.reindex(pd.MultiIndex.from_frame(table[index]))
    errors = ref["errors"].to_numpy()
    own = (table["errors"] - table["levels"] * metric.error(table["clean_value"])).to_numpy()
    theirs = errors - ref["levels"].to_numpy() * metric.error(ref["clean_value"].to_numpy())
    wrong, hurt = errors > UNHURT, theirs > UNHURT  # a flawless baseline gives no ratio
    table["ce"] = np.where(wrong, table["errors"].to_numpy() / np.where(wrong, errors, 1.0), np.nan)
    table["rel_ce"] = np.where(hurt, own / np.where(hurt, theirs, 1.0), np.nan)


def shift_summary(errors: pd.DataFrame) -> pd.DataFrame:
    """Per (dataset, model, recipe): clean value, mean corrupted value, mean RA, and with a
    baseline mCE and relative mCE (means over conditions; ``rel_conditions``: how many
    conditions relative mCE rests on), from :func:`corruption_errors`."""
    out = errors.groupby(KEY).agg(clean_value=("clean_value", "first"), mean_acc=("mean_acc", "mean"),
                                  mean_ra=("ra", "mean"), mce=("ce", "mean"), rel_mce=("rel_ce", "mean"),
                                  conditions=("ce", "size"), rel_conditions=("rel_ce", "count"))
    return out.reset_index()


def severity_means(rows: pd.DataFrame, clean: pd.Series) -> pd.DataFrame:
    """The mean value over all conditions (and seeds) per (dataset, model, recipe, severity),
    with the clean value as severity 0 where corruptions ran."""
    if rows.empty:
        return pd.DataFrame(columns=KEY + ["severity", "value"])
    mean = rows.groupby(KEY + ["severity"], as_index=False)["value"].mean()
    zero = clean.rename("value").reset_index().assign(severity=0.0)
    zero = zero.merge(mean[KEY].drop_duplicates(), on=KEY)  # only where there are corruptions
    return pd.concat([zero, mean], ignore_index=True)[KEY + ["severity", "value"]]


def natural_summary(rows: pd.DataFrame, metric: ScoreMetric = ACCURACY) -> pd.DataFrame:
    """Per (dataset, model, recipe): the value on ``id`` and each group (columns, means over
    seeds), and ``worst_group`` (the worst of them)."""
    if rows.empty:
        return pd.DataFrame(columns=KEY + ["id", "worst_group"])
    table = rows.pivot_table(index=KEY, columns="target", values="value", aggfunc="mean")
    table["worst_group"] = metric.worst_of(table)
    groups = [c for c in table.columns if c not in ("id", "worst_group")]
    return table[["id", *groups, "worst_group"]].reset_index().rename_axis(columns=None)
