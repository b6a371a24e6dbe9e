"""The built-in perturbations' own behaviour. (Every registered perturbation's contract:
mmbench/testing/test_contract_perturbations.py.)"""

from __future__ import annotations

import torch

from mmbench.data.base import MultimodalDataset
from mmbench.perturb.base import ALL, Perturbation
from mmbench.registry import PERTURBATIONS


def _cases(name: str, data: MultimodalDataset) -> list[Perturbation]:
    """Expand with the parameters the registration gives as its ``example`` (if any)."""
    from mmbench.config.suite import Component
    from mmbench.plan.cells import expand_perturbation

    example = PERTURBATIONS.entry(name).meta.get("example", {})
    cases = expand_perturbation(Component(name, dict(example)), data)
    assert cases and all(isinstance(c, Perturbation) for c in cases)
    return cases


def test_clean_is_the_identity(synth: MultimodalDataset) -> None:
    (case,) = _cases("clean", synth)
    batch, labels = synth.test.rows(slice(0, 8))
    out = case.apply(torch.nn.Identity(), batch, labels, seed=0)
    assert all(torch.equal(out[k], batch[k]) for k in batch)
    assert (case.family, case.target, case.severity) == ("clean", ALL, 0.0)
