"""Randomized smoothing end to end on real mfeat (issue 16, part 2): a ``gaussian_augment`` model
certified by the harness agrees with an independent reimplementation of CERTIFY (per row, own
noise loop, scipy's exact binomial interval; same seeds, same counts), certified accuracy never
exceeds the smoothed classifier's clean accuracy, and PGD-L2 on the base classifier under the
same noise draws flips no certified row within its radius."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import binomtest, norm

import mmbench
from mmbench.config.suite import Component
from mmbench.data.base import Split
from mmbench.execution.evaluate import EvalSettings, eval_rows, evaluate
from mmbench.families.smoothing import CERTIFIED, certified_cells
from mmbench.hashing import derive_seed
from mmbench.metrics.outcomes import SampleSet
from mmbench.perturb.certify import noisy_counts
from mmbench.plan.cells import expand_perturbation
from mmbench.registry import RECIPES
from mmbench.store.rows import CellFacts
from mmbench.train.gaussian_augment import GaussianAugmentConfig

SIGMA, N0, N, ALPHA, ROWS, BATCH, SEED = 0.5, 16, 160, 0.01, 24, 10, 1234
RADII = [0.0, 0.25, 0.5, 1.0]


@pytest.fixture(scope="module")
def trained() -> tuple:
    data = mmbench.load_dataset("mfeat")
    torch.manual_seed(0)
    model = mmbench.create_model("late_fusion", data.modalities, data.n_classes)
    config = GaussianAugmentConfig(epochs=4, batch_size=64, lr=0.002, patience=0, sigma=SIGMA, target="fac")
    RECIPES.get("gaussian_augment")().fit(model, data, config, seed=0)
    return data, model.double().eval()


def _case(data, target: str):
    params = {"sigma": [SIGMA], "targets": [target], "n0": N0, "n": N, "alpha": ALPHA, "radii": RADII,
              "max_rows": ROWS, "chunk": 64}
    (case,) = expand_perturbation(Component("smoothing", params), data)
    return case


def _double(split):
    return Split({k: v.double() for k, v in split.inputs.items()}, split.labels)


def independent_certify(model, split, spec, n_classes: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
    """CERTIFY written out per row: the noise of draw j of a batch with seed s comes from a
    generator seeded derive_seed(s, phase, j) drawing N(0, 1) of the batch's target shape."""
    rows = eval_rows(len(split), ROWS, split.labels.device)
    preds, radii, labels, first = [], [], [], {}
    for i, start in enumerate(range(0, len(rows), BATCH)):
        batch, y = split.rows(rows[start:start + BATCH])
        counts = {}
        for phase, draws in (("select", N0), ("estimate", N)):
            noise = [torch.randn(batch[spec.name].shape, dtype=torch.float64,
                                 generator=torch.Generator().manual_seed(derive_seed(SEED + i, phase, j)))
                     for j in range(draws)]
            c = np.zeros((len(y), n_classes), int)
            for r in range(len(y)):
                for z in noise:
                    x = {k: v[r:r + 1] for k, v in batch.items()}
                    x[spec.name] = (x[spec.name] + SIGMA * (spec.hi - spec.lo) * z[r:r + 1]).clamp(spec.lo, spec.hi)
                    with torch.no_grad():
                        c[r, int(model(x).argmax())] += 1
            counts[phase] = c
        first = first or counts
        for r in range(len(y)):
            top = int(np.argmax(counts["select"][r]))
            low = binomtest(int(counts["estimate"][r, top]), N).proportion_ci(1 - 2 * ALPHA, "exact").low
            preds.append(top)
            radii.append(SIGMA * norm.ppf(low) if low > 0.5 else np.nan)
        labels.extend(y.tolist())
    return np.array(preds), np.array(radii), np.array(labels), first


def test_certify_agrees_with_an_independent_reimplementation(trained) -> None:
    data, model = trained
    split = _double(data.test)
    case = _case(data, "fac")
    got = evaluate(model, split, case, EvalSettings(BATCH, SEED)).samples(SampleSet("mfeat", "test", ROWS))
    spec = next(m for m in data.modalities if m.name == "fac")
    preds, radius, labels, counts = independent_certify(model, split, spec, data.n_classes)
    batch, _ = split.rows(eval_rows(len(split), ROWS, split.labels.device)[:BATCH])
    for phase, draws in (("select", N0), ("estimate", N)):  # the harness's counts of the first batch
        base, inputs = case._base(model, batch)
        harness = noisy_counts(base, inputs, case.specs, SIGMA, draws, data.n_classes, SEED, phase, chunk=64)
        assert np.array_equal(harness, counts[phase]), phase
    assert got.preds.tolist() == preds.tolist() and got.labels.tolist() == labels.tolist()
    assert np.array_equal(np.isnan(got.radius), np.isnan(radius))
    assert np.allclose(got.radius[~np.isnan(radius)], radius[~np.isnan(radius)], atol=1e-5)
    assert (~np.isnan(radius)).sum() > ROWS // 2  # the augmented model certifies most rows
    facts = CellFacts("s", "mfeat", "late_fusion", "gaussian_augment", 0, "smoothing", "smoothed", "fac", SIGMA,
                      facts=case.facts())
    clean = float((got.preds == got.labels).mean())
    for cell, samples in certified_cells("k", facts, got).values():
        r = cell.facts["radius"]
        expected = float(((preds == labels) & (np.nan_to_num(radius, nan=-1.0) >= r)).mean())
        assert cell.perturbation == CERTIFIED
        assert float((samples.preds == samples.labels).mean()) == pytest.approx(expected)
        assert expected <= clean  # never above the smoothed classifier's clean accuracy


def _pgd_l2(model, batch, label, spec, noise, eps: float, steps: int = 20) -> torch.Tensor:
    """PGD in L2 (normalised units) on the base classifier's mean softmax over the fixed noise draws."""
    x = batch[spec.name]
    scale = spec.hi - spec.lo
    delta = torch.zeros_like(x, requires_grad=True)
    for _ in range(steps):
        noisy = ((x + delta * scale).unsqueeze(0) + SIGMA * scale * noise).clamp(spec.lo, spec.hi)
        others = {k: v.expand(len(noise), *v.shape[1:]) for k, v in batch.items() if k != spec.name}
        probs = model({**others, spec.name: noisy.view(-1, *x.shape[1:])}).softmax(1).mean(0)
        loss = -torch.log(probs[label] + 1e-12)
        (grad,) = torch.autograd.grad(loss, delta)
        with torch.no_grad():
            delta += 2.5 * eps / steps * grad / grad.norm().clamp_min(1e-12)
            delta *= torch.clamp(eps / delta.norm().clamp_min(1e-12), max=1.0)
            delta.copy_(((x + delta * scale).clamp(spec.lo, spec.hi) - x) / scale)
    return delta.detach()


def row_noise(spec, i: int, n_rows: int) -> torch.Tensor:
    """The estimation draws the harness used for evaluated row ``i`` (its batch's seed, its place)."""
    b, r = divmod(i, BATCH)
    shape = (min(BATCH, n_rows - b * BATCH), *spec.shape)
    return torch.stack([torch.randn(shape, dtype=torch.float64,
                                    generator=torch.Generator().manual_seed(derive_seed(SEED + b, "estimate", j)))[r:r + 1]
                        for j in range(N)])


def test_no_l2_attack_within_the_certified_radius_flips_a_certified_row(trained) -> None:
    data, model = trained
    split = _double(data.test)
    case = _case(data, "fac")
    spec = next(m for m in data.modalities if m.name == "fac")
    got = evaluate(model, split, case, EvalSettings(BATCH, SEED)).samples(SampleSet("mfeat", "test", ROWS))
    rows = eval_rows(len(split), ROWS, split.labels.device)
    checked = 0
    for i in np.flatnonzero(~np.isnan(got.radius))[:8]:
        batch, _ = split.rows(rows[i:i + 1])
        noise = row_noise(spec, i, len(rows))
        top, radius = int(got.preds[i]), float(got.radius[i])
        delta = _pgd_l2(model, batch, top, spec, noise, 0.99 * radius)
        assert float(delta.norm()) <= radius * (1 + 1e-6)
        adv = (batch[spec.name] + delta * (spec.hi - spec.lo) + SIGMA * (spec.hi - spec.lo) * noise.squeeze(1))
        others = {k: v.expand(N, *v.shape[1:]) for k, v in batch.items() if k != spec.name}
        with torch.no_grad():
            votes = model({**others, spec.name: adv.clamp(spec.lo, spec.hi)}).argmax(1).bincount(minlength=10)
        assert int(votes.argmax()) == top, f"row {i}: certified at {radius:.3f}, flipped by ||delta|| {delta.norm():.3f}"
        checked += 1
    assert checked >= 4
