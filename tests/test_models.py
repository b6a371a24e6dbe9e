"""The model zoo: each built-in model learns data with all four modality kinds; overrides and
model-specific behaviour. (Every registered model's contract: mmbench/testing.)"""

from __future__ import annotations

import pytest
import torch

import mmbench
from mmbench.data.base import MultimodalDataset
from mmbench.errors import MMBenchError
from mmbench.models.tensor import default_tfn_dim
from mmbench.registry import MODELS as REGISTRY
from mmbench.train.base import split_accuracy
from mmbench.train.standard import StandardConfig, StandardRecipe

MODELS = [e.name for e in REGISTRY.entries() if e.source == "builtin"]


@pytest.mark.parametrize("name", MODELS)
def test_trains_a_few_steps_and_beats_chance(name: str, synth: MultimodalDataset) -> None:
    torch.manual_seed(0)
    model = mmbench.create_model(name, synth.modalities, synth.n_classes)
    before = split_accuracy(model, synth.val)
    report = StandardRecipe().fit(model, synth, StandardConfig(epochs=6, batch_size=32, lr=3e-3), seed=0)
    assert report.epochs_run >= 1
    after = split_accuracy(model, synth.test)
    assert after > 1.0 / synth.n_classes + 0.15, f"{name}: test accuracy {after:.3f} (before {before:.3f})"


def test_overrides_and_none_dropping(synth: MultimodalDataset) -> None:
    small = mmbench.create_model("late_fusion", synth.modalities, synth.n_classes, dim=8, hidden=None)
    big = mmbench.create_model("late_fusion", synth.modalities, synth.n_classes, dim=32)
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(small) < count(big)
    with pytest.raises(MMBenchError, match=r"model 'late_fusion': unknown parameter 'dimm' \(did you mean 'dim'\?\)"):
        mmbench.create_model("late_fusion", synth.modalities, synth.n_classes, dimm=8)


def test_unimodal_rejects_unknown_modality(synth: MultimodalDataset) -> None:
    with pytest.raises(MMBenchError, match="unknown modality 'imgg'.*did you mean 'img'"):
        mmbench.create_model("unimodal", synth.modalities, synth.n_classes, modality="imgg")


def test_unimodal_ignores_other_modalities(synth: MultimodalDataset) -> None:
    model = mmbench.create_model("unimodal", synth.modalities, synth.n_classes, modality="tab").eval()
    batch, _ = synth.test.rows(slice(0, 4))
    changed = {**batch, "img": torch.rand_like(batch["img"])}
    torch.testing.assert_close(model(batch), model(changed), rtol=0, atol=0)


@pytest.mark.parametrize("n_mod,limit", [(2, 4096), (4, 4096), (6, 4096), (6, 100)])
def test_tfn_default_dim_keeps_the_fused_tensor_small(n_mod: int, limit: int) -> None:
    d = default_tfn_dim(n_mod, limit)
    assert d >= 1
    assert (d + 1) ** n_mod <= limit or d == 1
    assert (d + 2) ** n_mod > limit
