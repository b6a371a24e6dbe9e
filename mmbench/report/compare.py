"""``mmbench compare DIR_A DIR_B``: paired differences of every score between two runs.

Both folders must have evaluated the same test rows (same datasets and splits) and read the
same score metric: their cells' bootstrap replicates then use the same resampling weights, so
the difference of a score has its own paired interval. Rows are (dataset, model, recipe,
score) present in both runs. What else differs is said, not hidden: with different training
seeds the intervals cover test-row resampling only, so no difference is starred; with
different baselines the scores measured against the baseline (mCE, relative mCE, effective
robustness) are not compared.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from mmbench.stats.bootstrap import LEVEL
from mmbench.stats.curves import KEY
from mmbench.errors import MMBenchError
from mmbench.families.scoring import against_baseline
from mmbench.render.tables import github
from mmbench.report.publish import StoredRun, load_run


@dataclass(frozen=True)
class Comparison:
    """The paired differences, whether stars may be shown, and notes on what differs."""

    table: pd.DataFrame
    starred: bool
    notes: tuple[str, ...]


def compare(a: Path, b: Path) -> Comparison:
    """Per shared (dataset, model, recipe, score): value in A, in B, A - B and its interval."""
    run_a, run_b = _load(a), _load(b)
    _check_comparable(a, b, run_a, run_b)
    notes, excluded = _differences(run_a, run_b)
    notes += _unchecked(run_a, run_b)
    analysis_a, analysis_b = run_a.analysis(), run_b.analysis()
    both = analysis_a.scores.merge(analysis_b.scores, on=KEY + ["score"], suffixes=("_a", "_b"))
    both = both[~both["score"].isin(excluded)]
    if both.empty:
        raise MMBenchError(f"{a} and {b} share no (dataset, model, recipe, score); compare runs "
                           "of the same models")
    diffs = analysis_a.runs.merge(analysis_b.runs, on=KEY + ["score", "b"], suffixes=("_a", "_b"))
    diffs["diff"] = diffs["value_a"] - diffs["value_b"]
    bounds = diffs.groupby(KEY + ["score"])["diff"].quantile([(1 - LEVEL) / 2, (1 + LEVEL) / 2])
    bounds = bounds.unstack().set_axis(["ci_low", "ci_high"], axis=1).reset_index()
    out = both.assign(diff=both["value_a"] - both["value_b"]).merge(bounds, on=KEY + ["score"], how="left")
    table = out.sort_values(KEY + ["score"], kind="stable").reset_index(drop=True)
    return Comparison(table, run_a.reading.seeds == run_b.reading.seeds, tuple(notes))


def _load(folder: Path) -> StoredRun:
    """A run read back from ``folder``; every failure names the folder."""
    try:
        return load_run(folder)
    except MMBenchError as exc:
        text = str(exc)
        raise MMBenchError(text if str(folder) in text else f"{folder}: {text}") from None
    except sqlite3.DatabaseError as exc:
        raise MMBenchError(f"{folder}: its store is damaged or unreadable ({exc}); 'mmbench status {folder}' "
                           f"shows what is readable and 'mmbench repair {folder}' keeps it") from None


def _shared_splits(run_a: StoredRun, run_b: StoredRun) -> list[tuple[str, str, str | None, str | None]]:
    """(dataset, split, hash in A, hash in B) of every split or group both runs evaluated."""
    out = []
    for dataset, split in sorted(run_a.evaluated & run_b.evaluated):
        info_a, info_b = run_a.datasets.get(dataset), run_b.datasets.get(dataset)
        out.append((dataset, split, info_a.splits.get(split) if info_a else None,
                    info_b.splits.get(split) if info_b else None))
    return out


def _unchecked(run_a: StoredRun, run_b: StoredRun) -> list[str]:
    """A note when a store predates content hashes: its rows were matched by labels only."""
    unknown = [f"{d} {s}" for d, s, fa, fb in _shared_splits(run_a, run_b) if fa is None or fb is None]
    if not unknown:
        return []
    return [f"The data of {', '.join(unknown)} could not be checked to be the same in both runs (a store "
            "written before content hashes were kept; rerun it to record them): only its labels were "
            "compared."]


def _check_comparable(a: Path, b: Path, run_a: StoredRun, run_b: StoredRun) -> None:
    metric_a, metric_b = run_a.reading.score_metric, run_b.reading.score_metric
    if metric_a != metric_b:
        raise MMBenchError(f"{a} scores {metric_a} and {b} scores {metric_b}; compare runs with the "
                           "same score_metric")
    for dataset, split, hash_a, hash_b in _shared_splits(run_a, run_b):
        if hash_a and hash_b and hash_a != hash_b:
            raise MMBenchError(f"{a} and {b} evaluated different data: dataset {dataset!r} {split!r} holds "
                               f"other inputs or labels (content {hash_a[:8]} vs {hash_b[:8]}); compare runs "
                               "on the same data")
    for name in set(run_a.labels) & set(run_b.labels):
        if not np.array_equal(run_a.labels[name], run_b.labels[name]):
            raise MMBenchError(f"{a} and {b} evaluated different rows ({name}); "
                               "compare runs on the same datasets and splits")


def _differences(run_a: StoredRun, run_b: StoredRun) -> tuple[list[str], frozenset[str]]:
    """Notes on what differs between the runs, and the scores that cannot be compared."""
    notes, excluded = [], frozenset()
    seeds_a, seeds_b = list(run_a.reading.seeds), list(run_b.reading.seeds)
    if seeds_a != seeds_b:
        notes.append(f"Training seeds differ (A: {seeds_a}, B: {seeds_b}): the intervals resample test "
                     "rows only and do not cover the variation across training seeds, so no "
                     "difference is starred.")
    base_a, base_b = run_a.reading.baseline, run_b.reading.baseline
    if base_a != base_b:
        excluded = against_baseline()
        notes.append(f"Baselines differ (A: {base_a or 'none'}, B: {base_b or 'none'}): "
                     f"{', '.join(sorted(excluded))} are measured against different models "
                     "and are not compared.")
    return notes, excluded


def render(comparison: Comparison, a: Path, b: Path) -> str:
    """Markdown: each difference with its 95% interval; * where the interval excludes 0 (when
    the runs share their training seeds)."""
    lines = []
    for r in comparison.table.itertuples():
        sure = comparison.starred and not (np.isnan(r.ci_low) or r.ci_low <= 0 <= r.ci_high)
        interval = "-" if np.isnan(r.ci_low) else f"[{r.ci_low:+.4f}, {r.ci_high:+.4f}]"
        lines.append([r.dataset, r.model, r.recipe, r.score, f"{r.value_a:.4f}", f"{r.value_b:.4f}",
                      f"{r.diff:+.4f}{' *' if sure else ''}", interval])
    stars = " (* excludes 0)" if comparison.starred else ""
    head = f"# {a} (A) vs {b} (B): paired differences, 95% bootstrap intervals{stars}\n\n"
    notes = "".join(f"{note}\n\n" for note in comparison.notes)
    table = github(lines, ["dataset", "model", "recipe", "score", "A", "B", "A - B", "interval"])
    return head + notes + table + "\n"
