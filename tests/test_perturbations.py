"""Every registered perturbation, parametrized from the registry, honours the contract:
same modalities and shapes, untouched non-targets, values within bounds, seeded."""

from __future__ import annotations

import pytest
import torch

import mmbench
from mmbench.data.base import MultimodalDataset
from mmbench.perturb.base import ALL, Perturbation
from mmbench.registry import PERTURBATIONS


def _cases(name: str, data: MultimodalDataset) -> list[Perturbation]:
    """Expand with the parameters the registration gives as its ``example`` (if any)."""
    from mmbench.engine.plan import expand_perturbation
    from mmbench.engine.suite import Component

    example = PERTURBATIONS.entry(name).meta.get("example", {})
    cases = expand_perturbation(Component(name, dict(example)), data)
    assert cases and all(isinstance(c, Perturbation) for c in cases)
    return cases


@pytest.mark.parametrize("name", PERTURBATIONS.names())
def test_perturbation_contract(name: str, synth: MultimodalDataset) -> None:
    torch.manual_seed(0)
    model = mmbench.create_model("late_fusion", synth.modalities, synth.n_classes).eval()
    batch, labels = synth.test.rows(slice(0, 16))
    for case in _cases(name, synth):
        out = case.apply(model, batch, labels, seed=0)
        again = case.apply(model, batch, labels, seed=0)
        targets = set(synth.modality_names) if case.target == ALL else set(case.target.split("+"))
        assert set(out) == set(batch)
        for spec in synth.modalities:
            x, y = batch[spec.name], out[spec.name]
            assert y.shape == x.shape and y.dtype == x.dtype and y.device == x.device
            assert float(y.min()) >= spec.lo and float(y.max()) <= spec.hi
            assert torch.equal(y, again[spec.name]), f"{case}: not deterministic for one seed"
            if spec.name not in targets:
                assert torch.equal(y, x), f"{case}: touched non-target {spec.name}"


def test_clean_is_the_identity(synth: MultimodalDataset) -> None:
    (case,) = _cases("clean", synth)
    batch, labels = synth.test.rows(slice(0, 8))
    out = case.apply(torch.nn.Identity(), batch, labels, seed=0)
    assert all(torch.equal(out[k], batch[k]) for k in batch)
    assert (case.family, case.target, case.severity) == ("clean", ALL, 0.0)
