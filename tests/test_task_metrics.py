"""Regression and multilabel metrics against scikit-learn, scipy or a hand-written reference, on
realistic random data; integer weights equal repeated rows for every one of them (mAP with tied
scores too); Acc-2's two conventions on a hand-computed example. (Every registered metric's
contract: mmbench/testing/test_contract_metrics.py.)"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from scipy.stats import pearsonr
from sklearn.metrics import (accuracy_score, average_precision_score, f1_score, hamming_loss, mean_absolute_error,
                             mean_squared_error)

from mmbench.data.tasks import MULTILABEL, REGRESSION
from mmbench.metrics.base import Outcomes
from mmbench.registry import METRICS

Reference = Callable[[np.ndarray, np.ndarray], float]
K = 6  # multilabel labels


def _sign_view(non_zero: bool, score: Callable[..., float], **options: str) -> Reference:
    """A reference for an Acc-2 convention: ``score`` of the sign classes of the first target
    column, on the rows the convention keeps."""
    def reference(outputs: np.ndarray, targets: np.ndarray) -> float:
        out, tgt = outputs[:, 0], targets[:, 0]
        if non_zero:
            keep = tgt != 0
            return float(score(tgt[keep] > 0, out[keep] > 0, **options))
        return float(score(tgt >= 0, out >= 0, **options))
    return reference


def _acc7(outputs: np.ndarray, targets: np.ndarray) -> float:
    """Acc-7 row by row with Python's round (half to even, as numpy's)."""
    def seven(value: float) -> int:
        return max(-3, min(3, round(value)))
    return sum(seven(o) == seven(t) for o, t in zip(outputs[:, 0], targets[:, 0])) / len(targets)


def _pearson(outputs: np.ndarray, targets: np.ndarray) -> float:
    return float(np.mean([pearsonr(outputs[:, d], targets[:, d])[0] for d in range(targets.shape[1])]))


REGRESSION_REFERENCES: dict[str, Reference] = {
    "mae": lambda o, t: mean_absolute_error(t, o),
    "rmse": lambda o, t: float(np.sqrt(mean_squared_error(t, o))),
    "pearson": _pearson,
    "acc2_has0": _sign_view(False, accuracy_score),
    "f1_has0": _sign_view(False, f1_score, average="weighted"),
    "acc2_non0": _sign_view(True, accuracy_score),
    "f1_non0": _sign_view(True, f1_score, average="weighted"),
    "acc7": _acc7,
}
MULTILABEL_REFERENCES: dict[str, Reference] = {  # (probabilities, targets); zero_division=0: the default, unwarned
    "micro_f1": lambda q, y: f1_score(y, q >= 0.5, average="micro", zero_division=0),
    "macro_f1": lambda q, y: f1_score(y, q >= 0.5, average="macro", zero_division=0),
    "samples_f1": lambda q, y: f1_score(y, q >= 0.5, average="samples", zero_division=0),
    "map": lambda q, y: average_precision_score(y, q, average="macro"),
    "subset_accuracy": lambda q, y: accuracy_score(y, q >= 0.5),
    "hamming_loss": lambda q, y: hamming_loss(y, q >= 0.5),
}


def regression_data(seed: int, n: int = 400, d: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """(outputs, targets) ``[n, d]``: sentiment-like targets on a grid of thirds in [-3, 3] (some
    exactly 0) and a model's noisy, shrunk outputs."""
    rng = np.random.default_rng(seed)
    targets = np.round(rng.uniform(-3, 3, (n, d)) * 3) / 3
    return 0.7 * targets + rng.normal(0, 0.9, (n, d)), targets


def multilabel_data(seed: int, n: int = 400, decimals: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(probabilities, 0/1 targets) ``[n, K]``, labels of different frequencies, every label
    with a positive row; ``decimals`` rounds the probabilities (tied scores)."""
    rng = np.random.default_rng(seed)
    targets = (rng.random((n, K)) < np.linspace(0.1, 0.6, K)).astype(np.float64)
    targets[0] = 1
    probs = 1 / (1 + np.exp(-(1.5 * (2 * targets - 1) + rng.normal(0, 1.5, (n, K)) - 0.5)))
    return (probs if decimals is None else np.round(probs, decimals)), targets


def value(name: str, task: str, outputs: np.ndarray, targets: np.ndarray) -> float:
    outcomes = Outcomes.of_task(task, outputs, targets)
    return float(METRICS.get(name)(outcomes.n_classes).value(outcomes)[0])


@pytest.mark.parametrize("name", sorted(REGRESSION_REFERENCES))
@pytest.mark.parametrize("seed", [0, 1])
def test_regression_matches_the_reference(name: str, seed: int) -> None:
    outputs, targets = regression_data(seed)
    assert (targets == 0).any() and (targets != 0).any()
    assert value(name, REGRESSION, outputs, targets) == pytest.approx(
        REGRESSION_REFERENCES[name](outputs, targets), rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("name", ["mae", "rmse", "pearson"])
def test_every_target_column_counts(name: str) -> None:
    outputs, targets = regression_data(2, d=3)
    assert value(name, REGRESSION, outputs, targets) == pytest.approx(
        REGRESSION_REFERENCES[name](outputs, targets), rel=1e-9)


def test_a_constant_predictor_has_no_correlation() -> None:
    _, targets = regression_data(3)
    assert value("pearson", REGRESSION, np.full_like(targets, 0.1), targets) == 0.0
    assert value("pearson", REGRESSION, targets, np.full_like(targets, -1 / 3)) == 0.0


def test_acc2_conventions_by_hand() -> None:
    """Rows 0 and 3 have a zero target: kept (non-negative) by has0, left out by non0."""
    targets = np.array([0.0, 1.2, -0.4, 0.0, 2.0])
    outputs = np.array([0.5, 0.3, 0.2, -1.0, -0.1])
    assert value("acc2_non0", REGRESSION, outputs, targets) == pytest.approx(1 / 3)  # row 1 of rows 1, 2, 4
    assert value("acc2_has0", REGRESSION, outputs, targets) == pytest.approx(2 / 5)  # rows 0 and 1
    # non0, rows 1, 2, 4: positive F1 2·1/(2 + 2) = 0.5 (support 2), negative F1 0 (support 1)
    assert value("f1_non0", REGRESSION, outputs, targets) == pytest.approx(2 / 3 * 0.5)
    weights = np.array([[1.0, 0, 1, 1, 0], [5, 0, 0, 7, 0]])  # no non-zero target drawn: 0
    outcomes = Outcomes.of_task(REGRESSION, outputs, targets)
    assert METRICS.get("acc2_non0")(1).compute(outcomes, weights)[:, 0] == pytest.approx([0.0, 0.0])


def test_acc2_non0_is_a_proportion_of_the_non_zero_rows_only() -> None:
    """Its exact interval counts the rows with a non-zero target, not every row of the cell."""
    assert METRICS.get("acc2_has0").proportion and METRICS.get("acc7").proportion
    targets = np.array([0.0, 1.0, -2.0, 0.0, 3.0])
    outcomes = Outcomes.of_task(REGRESSION, targets, targets)
    for name in ("acc2_non0", "f1_non0"):
        assert list(METRICS.get(name)(1).counted(outcomes, 5)) == [3]
    assert list(METRICS.get("acc2_has0")(1).counted(outcomes, 5)) == [5]


@pytest.mark.parametrize("name", sorted(MULTILABEL_REFERENCES))
@pytest.mark.parametrize("seed", [0, 1])
def test_multilabel_matches_the_reference(name: str, seed: int) -> None:
    probs, targets = multilabel_data(seed, decimals=1 if seed else None)
    if seed:  # a row with no label present nor predicted, a label never present nor predicted
        targets[5], probs[5] = 0, 0.1
        targets[:, 2], probs[:, 2] = 0, np.minimum(probs[:, 2], 0.4)
        targets[0, 2] = name == "map"  # mAP's reference needs a positive in every label
    assert value(name, MULTILABEL, probs, targets) == pytest.approx(
        MULTILABEL_REFERENCES[name](probs, targets), rel=1e-9, abs=1e-12)


def test_map_leaves_out_labels_without_positives() -> None:
    probs, targets = multilabel_data(4)
    targets[:, 1] = 0
    kept = [c for c in range(K) if c != 1]
    expected = average_precision_score(targets[:, kept], probs[:, kept], average="macro")
    assert value("map", MULTILABEL, probs, targets) == pytest.approx(expected, rel=1e-9)


def test_weighted_map_matches_sklearn_sample_weight() -> None:
    probs, targets = multilabel_data(5, decimals=1)
    weights = np.random.default_rng(5).integers(0, 4, len(targets)).astype(np.float64)
    expected = average_precision_score(targets, probs, average="macro", sample_weight=weights)
    got = METRICS.get("map")(K).compute(Outcomes.of_task(MULTILABEL, probs, targets), weights[None])[0, 0]
    assert got == pytest.approx(expected, rel=1e-9)


TASK_METRICS = [(n, REGRESSION) for n in sorted(REGRESSION_REFERENCES)] + \
    [(n, MULTILABEL) for n in sorted(MULTILABEL_REFERENCES)]


@pytest.mark.parametrize(("name", "task"), TASK_METRICS)
def test_integer_weights_repeat_rows(name: str, task: str) -> None:
    """Each of B integer weightings (0 drops a row, 3 counts it three times) gives the metric of
    the rows repeated that often, in one vectorised call; mAP on tied (rounded) probabilities."""
    outputs, targets = regression_data(6, d=2) if task == REGRESSION else multilabel_data(6, decimals=1)
    weights = np.random.default_rng(7).integers(0, 4, (4, len(targets))).astype(np.float64)
    metric = METRICS.get(name)(targets.shape[1])
    table = metric.compute(Outcomes.of_task(task, outputs, targets), weights)
    for b, row in enumerate(weights):
        rows = np.repeat(np.arange(len(targets)), row.astype(int))
        assert table[b, 0] == pytest.approx(value(name, task, outputs[rows], targets[rows]), rel=1e-9, abs=1e-12)


def test_every_task_metric_has_a_reference() -> None:
    for task, references in ((REGRESSION, REGRESSION_REFERENCES), (MULTILABEL, MULTILABEL_REFERENCES)):
        builtin = {e.name for e in METRICS.entries() if e.source == "builtin" and task in e.obj.tasks}
        assert builtin == set(references), task


def test_a_share_of_the_non_zero_rows_gets_an_exact_interval_over_those_rows() -> None:
    """acc2_non0 with every non-zero row right: Clopper-Pearson of m of m, m the non-zero rows
    (never [1, 1], never the narrower interval of all n rows)."""
    from scipy.stats import beta

    from mmbench.metrics.outcomes import Samples, SampleSet
    from mmbench.stats.bootstrap import metric_values

    rng = np.random.default_rng(5)
    targets = np.round(rng.uniform(-3, 3, 60)).astype(np.float32)  # about a seventh exactly 0
    outputs = targets + np.sign(targets) * 0.5  # every non-zero row on the right side
    zeros = np.zeros(60, np.int16)
    cell = Samples(SampleSet("d", "test"), zeros, zeros, zeros.astype(np.float32), task="regression",
                   outputs=outputs[:, None], targets=targets[:, None])
    m = int((targets != 0).sum())
    for name in ("acc2_non0", "f1_non0"):
        value, lo, hi = metric_values({"c": cell}, {name: METRICS.get(name)}, {"d": 1}, name).values[("c", name)]
        assert value == 1.0 and hi == 1.0
        assert lo == pytest.approx(beta.ppf(0.025, m, 1), abs=0.01), (name, m)
