"""Randomized-smoothing certification core (issue 16, part 2): the Clopper-Pearson bound against
scipy's exact binomial interval, the radius formula on hand-computed cases, abstention, and the
batched noisy counts (seeded, noise only on the targets)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import binomtest, norm

from mmbench.data.base import ModalityKind, ModalitySpec
from mmbench.perturb.certify import ABSTAIN, certify, lower_confidence_bound, noisy_counts


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


def test_noisy_counts_are_seeded_independent_of_chunking_and_touch_only_targets() -> None:
    torch.manual_seed(0)
    batch = {"a": torch.rand(5, 3), "b": torch.rand(5, 2)}
    specs = [ModalitySpec("a", ModalityKind.VECTOR, (3,), 0.0, 1.0)]
    seen = []

    def logits(x):
        seen.append({k: v.clone() for k, v in x.items()})
        return torch.stack([x["a"].sum(1), x["b"].sum(1) * 1.2, torch.full((len(x["a"]),), 1.0)], dim=1)

    one = noisy_counts(logits, batch, specs, 0.5, 40, 3, seed=1, phase="estimate", chunk=50)
    again = noisy_counts(logits, batch, specs, 0.5, 40, 3, seed=1, phase="estimate", chunk=7)
    other = noisy_counts(logits, batch, specs, 0.5, 40, 3, seed=2, phase="estimate", chunk=50)
    assert (one == again).all() and one.shape == (5, 3) and (one.sum(1) == 40).all()  # chunking irrelevant
    assert not (one == other).all()
    assert all(torch.equal(x["b"], batch["b"].repeat(len(x["b"]) // 5, 1)) for x in seen)
    assert all(not torch.equal(x["a"], batch["a"].repeat(len(x["a"]) // 5, 1)) for x in seen)
    assert all(float(x["a"].min()) >= 0 and float(x["a"].max()) <= 1 for x in seen)  # clamped to bounds
    zero = noisy_counts(logits, batch, specs, 0.0, 10, 3, seed=1, phase="select")
    clean = logits(batch).argmax(1)
    assert (zero[np.arange(5), clean.numpy()] == 10).all()  # sigma 0: the base prediction every time


def test_certified_radii_survive_the_store_and_an_older_store_still_reads(tmp_path) -> None:
    import sqlite3

    from mmbench.metrics.outcomes import Samples, SampleSet
    from mmbench.store.database import PlannedCell, Store
    from mmbench.store.rows import CellFacts

    rows = SampleSet("d", "test")
    facts = CellFacts("s", "d", "m", "r", 0, "smoothing", "smoothed", "a", 0.25)
    radius = np.array([0.5, np.nan, 0.0], np.float32)
    cert = Samples(rows, np.array([1, 0, 2], np.int16), np.array([1, 1, 2], np.int16),
                   np.array([0.9, 0.2, 0.6], np.float32), radius=radius)
    plain = Samples(rows, np.array([1], np.int16), np.array([0], np.int16), np.array([0.1], np.float32))
    store = Store(tmp_path)
    store.record(PlannedCell("c", "eval", "c"), facts, samples=cert)
    store.record(PlannedCell("p", "eval", "p"), facts, samples=plain)
    got = store.samples(["c", "p"])
    store.close()
    assert np.array_equal(got["c"].radius, radius, equal_nan=True) and got["p"].radius is None
    db = sqlite3.connect(tmp_path / "store.sqlite")  # as an mmbench before certificates wrote it
    db.execute("ALTER TABLE samples DROP COLUMN radius")
    db.commit()
    db.close()
    old = Store(tmp_path, readonly=True)
    assert old.samples(["p"])["p"].radius is None
    old.close()
    again = Store(tmp_path)  # a writable open adds the column back
    assert again.samples(["p"])["p"].radius is None
    again.close()


def test_a_fact_may_not_overwrite_a_common_column() -> None:
    from dataclasses import dataclass

    from mmbench.errors import MMBenchError
    from mmbench.perturb.base import Perturbation
    from mmbench.plan.cells import check_facts

    @dataclass(frozen=True)
    class Counting(Perturbation):
        def facts(self):
            return {"n": 1000}

        def apply(self, model, batch, labels, seed):
            return dict(batch)

    with pytest.raises(MMBenchError, match="fact named 'n'"):
        check_facts([Counting(family="x", name="counting")])


@pytest.mark.parametrize("params,message", [
    ({}, "'sigma' must be a non-empty list"),
    ({"sigma": [0.0]}, "sigma must be finite numbers > 0"),
    ({"sigma": [0.25, 0.25]}, "sigma lists 0.25 twice"),
    ({"sigma": [0.25], "alpha": 0.7}, "alpha must lie in"),
    ({"sigma": [0.25], "n": 0}, "n must be an integer >= 1"),
    ({"sigma": [0.25], "radii": [-1]}, "radii must be finite numbers >= 0"),
    ({"sigma": [0.25], "targets": ["txt"]}, "smoothing: modality 'txt' holds token ids"),
    ({"sigma": [0.25], "targets": ["tabb"]}, "smoothing: unknown target modality 'tabb'.*did you mean 'tab'"),
])
def test_bad_smoothing_parameters_are_one_line_errors(synth, params: dict, message: str) -> None:
    from mmbench.config.suite import Component
    from mmbench.errors import MMBenchError
    from mmbench.plan.cells import expand_perturbation

    with pytest.raises(MMBenchError, match=message) as info:
        expand_perturbation(Component("smoothing", params), synth)
    assert "\n" not in str(info.value)


def test_smoothing_expands_per_target_and_sigma(synth) -> None:
    from mmbench.config.suite import Component
    from mmbench.plan.cells import expand_perturbation

    cases = expand_perturbation(Component("smoothing", {"sigma": [0.5, 0.25]}), synth)
    # 'all' of a dataset with tokens (txt) is labelled by the continuous modalities it covers
    assert [(c.target, c.severity) for c in cases] == [(t, s) for t in ("img", "aud", "tab", "img+aud+tab")
                                                      for s in (0.25, 0.5)]
    assert cases[-1].facts()["radii"] == "0,0.25,0.5,0.75,1"
