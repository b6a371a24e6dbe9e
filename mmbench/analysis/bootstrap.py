"""Per-row outcomes of evaluation cells, every metric's value, and paired bootstrap intervals.

Every evaluation cell keeps its per-row outcomes (:class:`~mmbench.metrics.outcomes.Samples`).
Its rows were drawn from one *sample set* (dataset, split or group, row
subset), and every cell of a sample set is resampled with the same bootstrap weights, seeded by
the set's name: the replicates of two models (or two perturbations) are paired, so differences
get intervals too.

One generic mechanism serves every registered metric: a bootstrap replicate is the metric
computed with the rows weighted by multinomial resampling counts (the metric contract in
:mod:`mmbench.metrics.base`); intervals are percentile intervals (2.5%, 97.5%) of ``B``
replicates.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from mmbench.errors import RunError, first_line
from mmbench.metrics.base import Metric
from mmbench.metrics.outcomes import Samples, stack

B = 1000  # bootstrap replicates
LEVEL = 0.95
CHUNK = 64  # cells per vectorised metric call (bounds the [B, cells, classes] arrays)


def resample_weights(sample_set: str, n: int, replicates: int = B) -> np.ndarray:
    """[replicates, n] multinomial counts, the same for every cell of ``sample_set`` (the first
    r rows of a larger draw equal a draw of r)."""
    seed = int(hashlib.sha256(f"{sample_set}|{n}".encode()).hexdigest()[:8], 16)
    rng = np.random.default_rng(seed)
    return rng.multinomial(n, np.full(n, 1.0 / n), size=replicates).astype(np.float64)


def by_sample_set(samples: dict[str, Samples]) -> dict[tuple[str, int], list[str]]:
    """Cell keys grouped by the sample set they evaluated and their draws (sorted)."""
    groups: dict[tuple[str, int], list[str]] = {}
    for key, s in samples.items():
        groups.setdefault((s.sample_set.key, s.draws), []).append(key)
    return dict(sorted(groups.items()))


@dataclass(frozen=True)
class MetricValues:
    """Every (cell, metric): its value and 95% interval, plus the first replicates of one
    metric per cell (inputs for score intervals)."""

    values: dict[tuple[str, str], tuple[float, float, float]]  # (key, metric) -> value, lo, hi
    replicates: dict[str, np.ndarray]  # key -> replicates of ``score_metric``


def metric_values(samples: dict[str, Samples], metrics: dict[str, Callable[[int], Metric]],
                  n_classes: dict[str, int], score_metric: str = "accuracy",
                  score_replicates: int = B) -> MetricValues:
    """Values and intervals of every metric for every cell (``n_classes`` by dataset;
    ``metrics``: name -> metric class). A cell with several draws per row is weighted row by
    row: every draw of a row carries that row's weight, so the value averages over draws and
    the bootstrap resamples rows, not draws."""
    values: dict[tuple[str, str], tuple[float, float, float]] = {}
    reps: dict[str, np.ndarray] = {}
    for (set_key, draws), keys in by_sample_set(samples).items():
        first = samples[keys[0]]
        weights = np.vstack([np.ones((1, first.rows)), resample_weights(set_key, first.rows)])
        weights = np.tile(weights, (1, draws))  # row 0: the value; the rest: replicates
        classes = n_classes[first.sample_set.dataset]
        for start in range(0, len(keys), CHUNK):
            chunk = keys[start:start + CHUNK]
            for name, cls in metrics.items():
                table = _compute(name, cls(classes), [samples[k] for k in chunk], weights)
                lo, hi = _quantiles(table[1:])
                values.update({(k, name): (float(table[0, i]), float(lo[i]), float(hi[i]))
                               for i, k in enumerate(chunk)})
                if name == score_metric:
                    reps.update({k: table[1:1 + score_replicates, i] for i, k in enumerate(chunk)})
    return MetricValues(values, reps)


def _compute(name: str, metric: Metric, cells: list[Samples], weights: np.ndarray) -> np.ndarray:
    """``[1 + B, cells]``; a failing or malformed (plugin) metric is a one-line error."""
    full = metric.needs_probs
    if full and any(c.full is None for c in cells):
        raise RunError(f"metric '{name}' needs every class's probability, which these results did not "
                       "keep; rerun the suite (the cells are recomputed with them)")
    try:
        table = np.asarray(metric.compute(stack(cells, metric.n_classes, full), weights), dtype=np.float64)
    except Exception as exc:  # plugin code: one line, and the stored results stay usable
        raise RunError(f"metric '{name}' failed: {type(exc).__name__}: {first_line(exc)}; fix it, then "
                       "'mmbench report DIR' re-renders the results without recomputing") from None
    if table.shape != (len(weights), len(cells)):
        raise RunError(f"metric '{name}': compute returned shape {list(table.shape)}, expected "
                       f"[{len(weights)}, {len(cells)}] (weightings x cells)")
    return table


def _quantiles(replicates: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-column percentile interval, ignoring NaN replicates (NaN when all are)."""
    if np.isnan(replicates).all(axis=0).any():
        out = np.full((2, replicates.shape[1]), np.nan)
        ok = ~np.isnan(replicates).all(axis=0)
        if ok.any():
            out[:, ok] = np.nanquantile(replicates[:, ok], [(1 - LEVEL) / 2, (1 + LEVEL) / 2], axis=0)
        return out[0], out[1]
    lo, hi = np.nanquantile(replicates, [(1 - LEVEL) / 2, (1 + LEVEL) / 2], axis=0)
    return lo, hi
