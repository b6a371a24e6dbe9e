"""Metrics, parametrized over the registry, against scikit-learn where a reference exists."""

from __future__ import annotations

import pytest
import torch
from sklearn.metrics import accuracy_score, f1_score

from mmbench.registry import METRICS

REFERENCES = {
    "accuracy": accuracy_score,
    "macro_f1": lambda y, p: f1_score(y, p, average="macro"),
}


def _random_preds(seed: int, n: int = 300, k: int = 5) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    target = torch.randint(0, k, (n,), generator=g)
    noisy = torch.randint(0, k, (n,), generator=g)
    keep = torch.rand(n, generator=g) < 0.6
    return torch.where(keep, target, noisy), target


@pytest.mark.parametrize("name", METRICS.names())
def test_batched_updates_equal_one_shot(name: str) -> None:
    preds, target = _random_preds(0)
    once, batched = METRICS.get(name)(5), METRICS.get(name)(5)
    once.update(preds, target)
    for chunk in range(0, 300, 37):
        batched.update(preds[chunk:chunk + 37], target[chunk:chunk + 37])
    assert once.compute() == pytest.approx(batched.compute(), abs=1e-12)
    batched.reset()
    batched.update(target, target)
    assert batched.compute() != once.compute()


@pytest.mark.parametrize("name", METRICS.names())
def test_perfect_predictions_score_best(name: str) -> None:
    preds, target = _random_preds(1)
    metric = METRICS.get(name)
    perfect, noisy = metric(5), metric(5)
    perfect.update(target, target)
    noisy.update(preds, target)
    better = perfect.compute() > noisy.compute()
    assert better == metric.higher_is_better


@pytest.mark.parametrize("name", sorted(REFERENCES))
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_sklearn(name: str, seed: int) -> None:
    preds, target = _random_preds(seed)
    if seed == 2:  # a class that is never predicted nor present
        preds, target = preds.clamp(max=3), target.clamp(max=3)
    metric = METRICS.get(name)(5)
    metric.update(preds, target)
    assert metric.compute() == pytest.approx(REFERENCES[name](target.numpy(), preds.numpy()), abs=1e-12)
