"""Every registered perturbation honours the contract on a FusionModel and on a plain nn.Module,
on every device: same modalities, shapes, dtypes and device; untouched non-targets; values
within bounds; seeded. A registration's ``example`` metadata gives the parameters tested (and
its ``more_examples``, where one perturbation serves several families)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import mmbench
from mmbench.config.suite import Component
from mmbench.data.base import MultimodalDataset
from mmbench.execution.evaluate import BatchCache
from mmbench.perturb.base import ALL, Certified, Perturbation
from mmbench.plan.cells import expand_perturbation
from mmbench.registry import PERTURBATIONS
from mmbench.testing.fitting import plain_model

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def _cases(name: str, data: MultimodalDataset) -> list[Perturbation]:
    """The cases of every example of the registration (``example`` and any ``more_examples``)."""
    meta = PERTURBATIONS.entry(name).meta
    cases = []
    for example in [meta.get("example", {}), *meta.get("more_examples", ())]:
        cases += expand_perturbation(Component(name, dict(example)), data)
    assert cases and all(isinstance(c, Perturbation) for c in cases)
    return cases


def _model(kind: str, data: MultimodalDataset) -> nn.Module:
    if kind == "plain":
        return plain_model(data)
    torch.manual_seed(0)
    return mmbench.create_model("late_fusion", data.modalities, data.n_classes)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("kind", ["fusion", "plain"])
@pytest.mark.parametrize("name", PERTURBATIONS.names())
def test_perturbation_contract(name: str, kind: str, device: str, synth: MultimodalDataset) -> None:
    data = synth.to(device)
    model = _model(kind, data).to(device).eval()
    batch, labels = data.test.rows(slice(0, 16))
    for case in _cases(name, data):
        out = case.apply(model, batch, labels, seed=0)
        again = case.apply(model, batch, labels, seed=0)
        targets = set(data.modality_names) if case.target == ALL else set(case.target.split("+"))
        assert set(out) == set(batch) | (set(out) - set(data.modality_names))
        for spec in data.modalities:
            x, y = batch[spec.name], out[spec.name]
            assert y.shape == x.shape and y.dtype == x.dtype and y.device == x.device
            assert float(y.min()) >= spec.lo and float(y.max()) <= spec.hi
            assert torch.equal(y, again[spec.name]), f"{case}: not deterministic for one seed"
            if spec.name not in targets:
                assert torch.equal(y, x), f"{case}: touched non-target {spec.name}"
        out = case.logits(model, batch, labels, 0, BatchCache({}, (0,)))
        logits = out.logits if isinstance(out, Certified) else out
        assert logits.shape == (16, data.n_classes) and logits.device.type == device
        if isinstance(out, Certified):  # a decision per row with its radius (NaN: abstained)
            assert out.preds.shape == out.radius.shape == (16,)
            assert bool(((out.radius >= 0) | out.radius.isnan()).all())
