"""Built-in metrics against scikit-learn or a hand-written reference. (Every registered metric's
contract: mmbench/testing/test_contract_metrics.py.)"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score, log_loss

from mmbench.metrics.base import Outcomes
from mmbench.registry import METRICS
from mmbench.testing.fitting import random_outcomes

K = 5
REFERENCES = {  # metric -> reference(labels, preds, probs) from scikit-learn or by hand
    "accuracy": lambda y, p, q: accuracy_score(y, p),
    "macro_f1": lambda y, p, q: f1_score(y, p, average="macro"),
    "balanced_accuracy": lambda y, p, q: balanced_accuracy_score(y, p),
    "true_class_prob": lambda y, p, q: float(np.mean(q[np.arange(len(y)), y])),
    "nll": lambda y, p, q: log_loss(y, q, labels=list(range(K))),
    "brier": lambda y, p, q: float(np.mean(((q - np.eye(K)[y]) ** 2).sum(axis=1))),
}


def _outcomes(seed: int) -> tuple[Outcomes, np.ndarray, np.ndarray, np.ndarray]:
    return random_outcomes(seed, k=K)


@pytest.mark.parametrize("name", sorted(REFERENCES))
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_the_reference(name: str, seed: int) -> None:
    outcomes, labels, preds, probs = _outcomes(seed)
    if seed == 2:  # a class that is never predicted nor present
        keep = (labels < K - 1) & (preds < K - 1)
        labels, preds, probs = labels[keep], preds[keep], probs[keep]
        outcomes = Outcomes.single(preds, labels, K, probs=probs)
    expected = REFERENCES[name](labels, preds, probs)
    assert METRICS.get(name)(K).value(outcomes)[0] == pytest.approx(expected, rel=1e-6, abs=1e-9)


def test_every_builtin_metric_has_a_reference() -> None:
    builtin = [e.name for e in METRICS.entries() if e.source == "builtin" and "classification" in e.obj.tasks]
    assert set(builtin) <= set(REFERENCES)


