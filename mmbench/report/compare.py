"""``mmbench compare DIR_A DIR_B``: paired differences of every score between two runs.

Both folders must have evaluated the same test rows (same datasets and splits): their cells'
bootstrap replicates then use the same resampling weights, so the difference of a score has
its own paired interval. Rows are (dataset, model, recipe, score) present in both runs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from mmbench.analysis.scores import KEY, compute_scores, score_replicates
from mmbench.errors import MMBenchError
from mmbench.report.publish import DatasetInfo, Reading, stored_frame
from mmbench.store.database import open_existing

LEVEL = 0.95


def _load(folder: Path) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, np.ndarray], str]:
    """Point scores, replicate scores and label arrays per sample set of one results folder."""
    store = open_existing(folder)
    try:
        config = store.config() or {}
        datasets = {k: DatasetInfo.from_dict(v) for k, v in (store.meta("datasets") or {}).items()}
        keys = [c.key for c in store.statuses() if c.kind == "eval"]
        reading = Reading.from_config(config)
        frame, reps = stored_frame(store, keys, datasets, reading.metrics, reading.score_metric)
        labels = {s.sample_set: s.labels for s in store.samples(keys).values()}
    finally:
        store.close()
    baseline, scorer = reading.baseline, reading.scorer
    return (compute_scores(frame, baseline, scorer), score_replicates(frame, reps, baseline, scorer),
            labels, scorer.name)


def compare(a: Path, b: Path) -> pd.DataFrame:
    """Per shared (dataset, model, recipe, score): value in A, in B, A - B and its interval."""
    (point_a, reps_a, labels_a, metric_a), (point_b, reps_b, labels_b, metric_b) = _load(a), _load(b)
    if metric_a != metric_b:
        raise MMBenchError(f"{a} scores {metric_a} and {b} scores {metric_b}; compare runs with the "
                           "same score_metric")
    for name in set(labels_a) & set(labels_b):
        if not np.array_equal(labels_a[name], labels_b[name]):
            raise MMBenchError(f"{a} and {b} evaluated different rows of {name.split('|')[0]}; "
                               "compare runs on the same datasets and splits")
    both = point_a.merge(point_b, on=KEY + ["score"], suffixes=("_a", "_b"))
    if both.empty:
        raise MMBenchError(f"{a} and {b} share no (dataset, model, recipe, score); compare runs "
                           "of the same models")
    diffs = reps_a.merge(reps_b, on=KEY + ["score", "b"], suffixes=("_a", "_b"))
    diffs["diff"] = diffs["value_a"] - diffs["value_b"]
    bounds = diffs.groupby(KEY + ["score"])["diff"].quantile([(1 - LEVEL) / 2, (1 + LEVEL) / 2])
    bounds = bounds.unstack().set_axis(["ci_low", "ci_high"], axis=1).reset_index()
    out = both.assign(diff=both["value_a"] - both["value_b"]).merge(bounds, on=KEY + ["score"], how="left")
    return out.sort_values(KEY + ["score"], kind="stable").reset_index(drop=True)


def render(table: pd.DataFrame, a: Path, b: Path) -> str:
    """Markdown: each difference with its 95% interval; * where the interval excludes 0."""
    from tabulate import tabulate

    lines = []
    for r in table.itertuples():
        sure = not (np.isnan(r.ci_low) or r.ci_low <= 0 <= r.ci_high)
        interval = "-" if np.isnan(r.ci_low) else f"[{r.ci_low:+.4f}, {r.ci_high:+.4f}]"
        lines.append([r.dataset, r.model, r.recipe, r.score, f"{r.value_a:.4f}", f"{r.value_b:.4f}",
                      f"{r.diff:+.4f}{' *' if sure else ''}", interval])
    head = f"# {a} (A) vs {b} (B): paired differences, 95% bootstrap intervals (* excludes 0)\n\n"
    return head + tabulate(lines, headers=["dataset", "model", "recipe", "score", "A", "B", "A - B", "interval"],
                           tablefmt="github", disable_numparse=True) + "\n"
