"""Built-in regression metrics (the affect datasets: MOSI, MOSEI sentiment in [-3, 3]), each on
per-row outputs and targets ``[n, k, D]`` and checked against scikit-learn / scipy in the tests.

MAE, RMSE and Pearson's r read every target column. The affect-style classification views
(Acc-2 in both conventions, their F1s and Acc-7, as in the MMSA / MultiBench evaluation) read the
first target column only: the sentiment score (``D`` is 1 for MOSI and MOSEI).
"""

from __future__ import annotations

import numpy as np

from mmbench.data.tasks import REGRESSION
from mmbench.metrics.base import Metric, Outcomes, RowMetric, ratio
from mmbench.registry import METRICS

#: a weighted variance at most this share of the weighted mean square is rounding: no variance
RELATIVE_ZERO = 1e-12


def _outputs(outcomes: Outcomes) -> tuple[np.ndarray, np.ndarray]:
    """``(outputs, targets)``, each float ``[n, k, D]``."""
    assert outcomes.outputs is not None and outcomes.targets is not None, "regression outcomes needed"
    return outcomes.outputs.astype(np.float64), outcomes.targets.astype(np.float64)


def _first(outcomes: Outcomes) -> tuple[np.ndarray, np.ndarray]:
    """``(outputs, targets)`` of the first target column, each ``[n, k]``."""
    out, tgt = _outputs(outcomes)
    return out[:, :, 0], tgt[:, :, 0]


class RegressionRowMetric(RowMetric):
    """A regression metric that is a weighted mean of one number per row."""

    tasks = (REGRESSION,)


@METRICS.register("mae", description="mean absolute error over targets and rows (lower is better)")
class MeanAbsoluteError(RegressionRowMetric):
    higher_is_better = False

    def row_values(self, outcomes: Outcomes) -> np.ndarray:
        out, tgt = _outputs(outcomes)
        return np.abs(out - tgt).mean(axis=2)


@METRICS.register("rmse", description="root of the mean squared error over targets and rows (lower is better)")
class RootMeanSquaredError(Metric):
    higher_is_better = False
    tasks = (REGRESSION,)

    def compute(self, outcomes: Outcomes, weights: np.ndarray) -> np.ndarray:
        out, tgt = _outputs(outcomes)
        total = weights.sum(axis=1, keepdims=True)
        return np.sqrt(ratio(weights @ ((out - tgt) ** 2).mean(axis=2), total))


@METRICS.register("pearson", description="Pearson correlation of outputs and targets (mean over target columns)")
class Pearson(Metric):
    """The weighted Pearson correlation of each target column's outputs and targets, averaged
    over the columns. A column where either side has no weighted variance (a constant
    predictor, or a replicate that drew one distinct value) has no correlation: it counts 0."""

    tasks = (REGRESSION,)

    def compute(self, outcomes: Outcomes, weights: np.ndarray) -> np.ndarray:
        out, tgt = _outputs(outcomes)
        n, k, d = out.shape
        # shifted by the first row: a constant column is exactly 0, and the raw moments below
        # lose no precision to a large mean
        x, y = (out - out[:1]).reshape(n, k * d), (tgt - tgt[:1]).reshape(n, k * d)
        total = weights.sum(axis=1, keepdims=True)
        mx, my = ratio(weights @ x, total), ratio(weights @ y, total)
        sxx, syy = ratio(weights @ (x * x), total), ratio(weights @ (y * y), total)
        vx, vy = _variance(sxx, mx), _variance(syy, my)
        cov = ratio(weights @ (x * y), total) - mx * my
        r = np.clip(ratio(cov, np.sqrt(vx * vy)), -1.0, 1.0)
        return r.reshape(len(weights), k, d).mean(axis=2)


def _variance(mean_square: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """``E[x²] - E[x]²``, 0 where it is rounding (at most :data:`RELATIVE_ZERO` of ``E[x²]``)."""
    variance = mean_square - mean * mean
    return np.where(variance > RELATIVE_ZERO * mean_square, variance, 0.0)


def _binary(outcomes: Outcomes, non_zero: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(predicted, actual, kept)``, bool ``[n, k]`` each, of the first target column in one
    Acc-2 convention: negative vs non-negative (``value >= 0``, every row kept), or negative vs
    positive (``value > 0``) with the rows whose target is exactly 0 left out."""
    out, tgt = _first(outcomes)
    if non_zero:
        return out > 0, tgt > 0, tgt != 0
    return out >= 0, tgt >= 0, np.ones(tgt.shape, dtype=bool)


class BinaryAccuracy(Metric):
    """Acc-2: the weighted share of the kept rows whose sign class is right (0 with none kept)."""

    tasks = (REGRESSION,)
    non_zero = False

    def compute(self, outcomes: Outcomes, weights: np.ndarray) -> np.ndarray:
        predicted, actual, kept = _binary(outcomes, self.non_zero)
        right = (kept & (predicted == actual)).astype(np.float64)
        return ratio(weights @ right, weights @ kept.astype(np.float64))


class BinaryWeightedF1(Metric):
    """F1 of the sign classes averaged with the classes' (weighted) support as weights, over
    the kept rows: scikit-learn's ``f1_score(average="weighted")`` (0 with no row kept)."""

    tasks = (REGRESSION,)
    non_zero = False

    def compute(self, outcomes: Outcomes, weights: np.ndarray) -> np.ndarray:
        predicted, actual, kept = _binary(outcomes, self.non_zero)
        score, support = np.zeros((len(weights), outcomes.k)), np.zeros((len(weights), outcomes.k))
        for positive in (False, True):
            is_pred, is_true = kept & (predicted == positive), kept & (actual == positive)
            tp = weights @ (is_pred & is_true).astype(np.float64)
            both = weights @ is_pred.astype(np.float64) + weights @ is_true.astype(np.float64)
            count = weights @ is_true.astype(np.float64)
            score += count * ratio(2 * tp, both)
            support += count
        return ratio(score, support)


@METRICS.register("acc2_has0", description="share of rows whose sign is right, negative vs non-negative (>= 0)")
class Acc2HasZero(BinaryAccuracy):
    proportion = True


def non_zero_rows(outcomes: Outcomes, rows: int) -> np.ndarray:
    """``[k]``: the rows (of the first draw) whose first target is not 0."""
    return (_first(outcomes)[1][:rows] != 0).sum(axis=0)


@METRICS.register("acc2_non0", description="share of rows whose sign is right, negative vs positive, zero targets "
                                           "left out")
class Acc2NonZero(BinaryAccuracy):
    """A share of the rows with a non-zero target: its exact interval near 0 and 1 counts
    those rows only."""

    proportion = True
    non_zero = True

    def counted(self, outcomes: Outcomes, rows: int) -> np.ndarray:
        return non_zero_rows(outcomes, rows)


@METRICS.register("f1_has0", description="support-weighted F1 of negative vs non-negative (>= 0)")
class F1HasZero(BinaryWeightedF1):
    perfect = 1.0


@METRICS.register("f1_non0", description="support-weighted F1 of negative vs positive, zero targets left out")
class F1NonZero(BinaryWeightedF1):
    perfect = 1.0
    non_zero = True

    def counted(self, outcomes: Outcomes, rows: int) -> np.ndarray:
        return non_zero_rows(outcomes, rows)


@METRICS.register("acc7", description="share of rows whose output and target, rounded and clipped to [-3, 3], agree")
class Acc7(RegressionRowMetric):
    proportion = True

    def row_values(self, outcomes: Outcomes) -> np.ndarray:
        out, tgt = _first(outcomes)
        return np.clip(np.round(out), -3, 3) == np.clip(np.round(tgt), -3, 3)
