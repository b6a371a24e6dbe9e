"""Randomized-smoothing certification core (issue 16, part 2): the Clopper-Pearson bound against
scipy's exact binomial interval, the radius formula on hand-computed cases, abstention, and the
batched noisy counts (seeded, noise only on the targets)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import binomtest, norm

from mmbench.analysis.smoothing import ABSTAIN, certify, lower_confidence_bound, noisy_counts


@pytest.mark.parametrize("k,n,alpha", [(0, 100, 0.001), (1, 10, 0.05), (50, 100, 0.001), (99, 100, 0.001),
                                       (100, 100, 0.001), (990, 1000, 0.01), (7, 7, 0.05)])
def test_the_lower_bound_is_scipys_exact_one_sided_interval(k: int, n: int, alpha: float) -> None:
    exact = binomtest(k, n).proportion_ci(confidence_level=1 - 2 * alpha, method="exact").low
    assert float(lower_confidence_bound(k, n, alpha)) == pytest.approx(exact, abs=1e-10)


def test_radius_is_sigma_times_the_normal_quantile_of_the_bound() -> None:
    selection = np.array([[0, 10, 0], [5, 5, 0], [1, 0, 9], [3, 3, 4]])
    estimation = np.array([[0, 100, 0], [50, 50, 0], [0, 1, 99], [30, 30, 40]])
    cert = certify(selection, estimation, sigma=0.25, alpha=0.001)
    p = lower_confidence_bound(np.array([100, 50, 99, 40]), 100, 0.001)
    # hand: row 0, all 100 correct: p_lower = alpha^(1/n) = 0.001^(1/100)
    assert p[0] == pytest.approx(0.001 ** (1 / 100))
    assert cert.prediction.tolist() == [1, ABSTAIN, 2, ABSTAIN]  # p_lower <= 1/2 abstains
    assert cert.radius[0] == pytest.approx(0.25 * norm.ppf(0.001 ** (1 / 100)))
    assert cert.radius[2] == pytest.approx(0.25 * norm.ppf(p[2])) and cert.radius[1] == cert.radius[3] == 0.0
    assert (cert.radius[[0, 2]] > 0).all()


def test_noisy_counts_are_seeded_batched_and_touch_only_targets() -> None:
    torch.manual_seed(0)
    batch = {"a": torch.rand(5, 3), "b": torch.rand(5, 2)}
    seen = []

    def logits(x):
        seen.append({k: v.clone() for k, v in x.items()})
        return torch.stack([x["a"].sum(1), x["b"].sum(1), torch.full((len(x["a"]),), 1.5)], dim=1)

    one = noisy_counts(logits, batch, ["a"], 0.5, 40, 3, torch.Generator().manual_seed(1), chunk=50)
    again = noisy_counts(logits, batch, ["a"], 0.5, 40, 3, torch.Generator().manual_seed(1), chunk=50)
    other = noisy_counts(logits, batch, ["a"], 0.5, 40, 3, torch.Generator().manual_seed(2), chunk=7)
    assert (one == again).all() and one.shape == (5, 3) and (one.sum(1) == 40).all()
    assert not (one == other).all()
    assert all(torch.equal(x["b"], batch["b"].repeat(len(x["b"]) // 5, 1)) for x in seen)
    assert all(not torch.equal(x["a"], batch["a"].repeat(len(x["a"]) // 5, 1)) for x in seen)
    zero = noisy_counts(logits, batch, ["a"], 0.0, 10, 3, torch.Generator().manual_seed(1))
    clean = logits(batch).argmax(1)
    assert (zero[np.arange(5), clean.numpy()] == 10).all()  # sigma 0: the base prediction every time
