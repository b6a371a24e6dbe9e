"""Per-row outcomes of evaluation cells, every metric's value, and paired bootstrap intervals.

Every evaluation cell keeps its per-row outcomes (:class:`~mmbench.metrics.outcomes.Samples`)
and the ids of the rows of its split (or held-out group) it evaluated. A bootstrap replicate
weights the *rows of a split*: row ``r`` of split ``s`` gets a Poisson(1) count in replicate ``b``
that depends only on ``(s, r, b)`` (:func:`row_weights`), so every cell is resampled with the
same weights on the rows it shares with any other, whether it evaluated the whole split or a
seeded subset of it: models, perturbations, clean vs attacked and the parts of the composite
are paired, and their differences get intervals too.

One generic mechanism serves every registered metric: a bootstrap replicate is the metric
computed with the rows weighted by their resampling counts (the metric contract in
:mod:`mmbench.metrics.base`); intervals are percentile intervals (2.5%, 97.5%) of ``B``
replicates. Poisson rather than multinomial counts (the Poisson bootstrap, asymptotically the
same) because a multinomial draw couples every row to the split's size, so a subset could not
reuse the full split's weights.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from mmbench.errors import RunError, first_line
from mmbench.metrics.base import Metric
from mmbench.metrics.outcomes import Samples, stack

B = 1000  # bootstrap replicates
LEVEL = 0.95
CHUNK = 64  # cells per vectorised metric call (bounds the [B, cells, classes] arrays)


#: rows of a split whose weights are drawn per generator call (bounds memory: rows x B bytes)
ROW_CHUNK = 4096


def row_weights(split: str, row_ids: np.ndarray, replicates: int = B) -> np.ndarray:
    """[replicates, len(row_ids)] resampling counts of the given rows of ``split`` (``dataset|
    split``): Poisson(1) draws laid out row after row from one generator seeded by the split, so
    row r's counts are the same whichever rows, and however many, a cell evaluated."""
    if replicates > B:
        raise ValueError(f"at most {B} replicates")
    ids = np.asarray(row_ids, dtype=np.int64)
    out = np.zeros((replicates, len(ids)), dtype=np.float64)
    if not len(ids):
        return out
    rng = np.random.default_rng(int(hashlib.sha256(f"{split}|rows".encode()).hexdigest()[:8], 16))
    for start in range(0, int(ids.max()) + 1, ROW_CHUNK):
        block = rng.poisson(1.0, size=(min(ROW_CHUNK, int(ids.max()) + 1 - start), B))
        inside = (ids >= start) & (ids < start + ROW_CHUNK)
        out[:, inside] = block[ids[inside] - start, :replicates].T
    return out


def weight_groups(samples: dict[str, Samples]) -> dict[tuple[str, bytes, int], list[str]]:
    """Cell keys grouped by the split they evaluated, their row ids and draws (sorted): the
    cells of one group share one weight matrix."""
    groups: dict[tuple[str, bytes, int], list[str]] = {}
    for key, s in samples.items():
        split = f"{s.sample_set.dataset}|{s.sample_set.split}"
        groups.setdefault((split, s.ids.astype(np.int64).tobytes(), s.draws), []).append(key)
    return dict(sorted(groups.items()))


@dataclass(frozen=True)
class MetricValues:
    """Every (cell, metric): its value and 95% interval, plus the first replicates of one
    metric per cell (inputs for score intervals)."""

    values: dict[tuple[str, str], tuple[float, float, float]]  # (key, metric) -> value, lo, hi
    replicates: dict[str, np.ndarray]  # key -> replicates of ``score_metric``


def metric_values(samples: dict[str, Samples], metrics: dict[str, Callable[[int], Metric]],
                  n_classes: dict[str, int], score_metric: str | Mapping[str, str] = "accuracy",
                  score_replicates: int = B) -> MetricValues:
    """Values and intervals of every metric for every cell whose task it is defined for
    (``n_classes`` by dataset; ``metrics``: name -> metric class; ``score_metric``: the metric
    whose replicates are kept, or one per task). A cell with several draws per row is weighted
    row by row: every draw of a row carries that row's weight, so the value averages over draws
    and the bootstrap resamples rows, not draws."""
    values: dict[tuple[str, str], tuple[float, float, float]] = {}
    reps: dict[str, np.ndarray] = {}
    for (split, _, draws), keys in weight_groups(samples).items():
        first = samples[keys[0]]
        weights = np.vstack([np.ones((1, first.rows)), row_weights(split, first.ids)])
        weights = np.tile(weights, (1, draws))  # row 0: the value; the rest: replicates
        classes = n_classes[first.sample_set.dataset]
        scored_by = score_metric if isinstance(score_metric, str) else score_metric.get(first.task)
        for name, cls in metrics.items():
            if first.task not in getattr(cls, "tasks", (first.task,)):
                continue  # defined for another task: no value on these cells
            metric = cls(classes)
            table = np.hstack([_compute(name, metric, [samples[k] for k in keys[i:i + CHUNK]], weights)
                               for i in range(0, len(keys), CHUNK)])
            table = bounded(exact_near_edges(table, keys, samples, metric), keys, samples, metric.higher_is_better)
            lo, hi = _quantiles(table[1:])
            values.update({(k, name): (float(table[0, i]), float(lo[i]), float(hi[i])) for i, k in enumerate(keys)})
            if name == scored_by:
                reps.update({k: table[1:1 + score_replicates, i] for i, k in enumerate(keys)})
    return MetricValues(values, reps)


#: a proportion with fewer rows than this on one side (k or n - k) gets the exact interval
EDGE = 5


def exact_near_edges(table: np.ndarray, keys: list[str], samples: dict[str, Samples], metric: Metric) -> np.ndarray:
    """``table`` with the replicates of each proportion cell near 0 or 1 replaced by
    Clopper-Pearson quantiles (:func:`exact_replicates`): a percentile bootstrap of 92/92 is
    [1, 1], the exact interval [0.961, 1]. A metric at its ``perfect`` value (every row right)
    or at 0 (no row right, for such a metric) gets the exact interval of n (or 0) of n rows right.
    n is the rows the metric counts (:meth:`~mmbench.metrics.base.Metric.counted`)."""
    own = type(metric).counted is not Metric.counted  # leaves rows out: ask it, cell by cell
    for i, key in enumerate(keys):
        s = samples[key]
        n = int(metric.counted(stack([s], metric.n_classes, False), s.rows)[0]) if own else s.rows
        if metric.proportion:
            k = float(table[0, i]) * n
        elif metric.perfect is not None and table[0, i] in (0.0, metric.perfect):
            k = float(n) if table[0, i] == metric.perfect else 0.0  # every row right, or none
        else:
            continue
        if n and min(k, n - k) < EDGE:
            table[1:, i] = exact_replicates(k, n, table[1:, i])
    return table


def exact_replicates(k: float, n: int, replicates: np.ndarray) -> np.ndarray:
    """Replicates whose 2.5% and 97.5% percentiles are the Clopper-Pearson bounds of ``k`` of
    ``n`` (quantiles of Beta(k, n - k + 1) below the median, of Beta(k + 1, n - k) above; ``k``
    may be fractional, a mean over draws), given to the replicates in the order of the bootstrap
    ones, so what pairing they had is kept; scores built on the cell inherit the interval."""
    from scipy.stats import beta

    u = (np.arange(len(replicates)) + 0.5) / len(replicates)
    lower = beta.ppf(u, k, n - k + 1) if k > 0 else np.zeros_like(u)
    upper = beta.ppf(u, k + 1, n - k) if k < n else np.ones_like(u)
    out = np.empty(len(replicates))
    out[np.argsort(replicates, kind="stable")] = np.where(u < 0.5, lower, upper)
    return out


def bounded(table: np.ndarray, keys: list[str], samples: dict[str, Samples], higher_is_better: bool) -> np.ndarray:
    """``table`` [1 + B, cells] with each derived cell that declares ``bounded_by`` (a per-row
    worst case) never better than any of those cells, value and replicate alike: for accuracy
    the per-row worst already is (it picks a wrong row wherever one is wrong), but for a
    non-decomposable metric (macro-F1) the per-row pick does not minimise the metric."""
    where = {k: i for i, k in enumerate(keys)}
    worse = np.minimum if higher_is_better else np.maximum
    for i, key in enumerate(keys):
        members = [where[m] for m in samples[key].bounded_by if m in where]
        if members:
            table[:, i] = worse.reduce(table[:, [i, *members]], axis=1)
    return table


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
