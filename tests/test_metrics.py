"""Metrics, parametrized over the registry, against scikit-learn where a reference exists."""

from __future__ import annotations

import pytest
import torch
from sklearn.metrics import accuracy_score, f1_score

from mmbench.registry import METRICS

REFERENCES = {  # metrics over class indices, against scikit-learn
    "accuracy": accuracy_score,
    "macro_f1": lambda y, p: f1_score(y, p, average="macro"),
}


def _random_preds(seed: int, n: int = 300, k: int = 5) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits whose argmax is right about 60% of the time, and the true classes."""
    g = torch.Generator().manual_seed(seed)
    target = torch.randint(0, k, (n,), generator=g)
    noisy = torch.randint(0, k, (n,), generator=g)
    keep = torch.rand(n, generator=g) < 0.6
    labels = torch.where(keep, target, noisy)
    return _logits(labels, k) + 0.5 * torch.rand(n, k, generator=g), target


def _logits(labels: torch.Tensor, k: int = 5) -> torch.Tensor:
    return 3.0 * torch.nn.functional.one_hot(labels, k).float()


@pytest.mark.parametrize("name", METRICS.names())
def test_batched_updates_equal_one_shot(name: str) -> None:
    preds, target = _random_preds(0)
    once, batched = METRICS.get(name)(5), METRICS.get(name)(5)
    once.update(preds, target)
    for chunk in range(0, 300, 37):
        batched.update(preds[chunk:chunk + 37], target[chunk:chunk + 37])
    assert once.compute() == pytest.approx(batched.compute(), abs=1e-12)
    batched.reset()
    batched.update(_logits(target), target)
    assert batched.compute() != once.compute()


@pytest.mark.parametrize("name", METRICS.names())
def test_perfect_predictions_score_best(name: str) -> None:
    preds, target = _random_preds(1)
    metric = METRICS.get(name)
    perfect, noisy = metric(5), metric(5)
    perfect.update(_logits(target) * 5, target)
    noisy.update(preds, target)
    better = perfect.compute() > noisy.compute()
    assert better == metric.higher_is_better


@pytest.mark.parametrize("name", sorted(REFERENCES))
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_sklearn(name: str, seed: int) -> None:
    preds, target = _random_preds(seed)
    labels = preds.argmax(dim=1)
    if seed == 2:  # a class that is never predicted nor present
        labels, target = labels.clamp(max=3), target.clamp(max=3)
    metric = METRICS.get(name)(5)
    metric.update(labels, target)  # class indices are accepted too
    assert metric.compute() == pytest.approx(REFERENCES[name](target.numpy(), labels.numpy()), abs=1e-12)


def test_true_class_probability_by_hand() -> None:
    logits = torch.tensor([[0.0, 0.0], [2.0, 0.0]])
    metric = METRICS.get("true_class_prob")(2)
    metric.update(logits, torch.tensor([1, 0]))
    expected = (0.5 + torch.sigmoid(torch.tensor(2.0)).item()) / 2
    assert metric.compute() == pytest.approx(expected)
    with pytest.raises(ValueError, match="needs logits"):
        metric.update(torch.tensor([0, 1]), torch.tensor([0, 1]))
