"""Every registered model, parametrized from the registry: builds on all four modality kinds,
trains a few steps, evaluates, and keeps its encode/fuse contract."""

from __future__ import annotations

import pytest
import torch

import mmbench
from mmbench.data.base import MultimodalDataset
from mmbench.errors import MMBenchError
from mmbench.models.base import FusionModel
from mmbench.models.tensor import default_tfn_dim
from mmbench.train.base import split_accuracy
from mmbench.train.standard import StandardConfig, StandardRecipe

MODELS = mmbench.list_models()


@pytest.mark.parametrize("name", MODELS)
def test_forward_gives_logits_for_every_modality_kind(name: str, synth: MultimodalDataset) -> None:
    torch.manual_seed(0)
    model = mmbench.create_model(name, synth.modalities, synth.n_classes)
    assert isinstance(model, FusionModel)
    batch, _ = synth.test.rows(slice(0, 7))
    logits = model(batch)
    assert logits.shape == (7, synth.n_classes)
    assert torch.isfinite(logits).all()


@pytest.mark.parametrize("name", MODELS)
def test_trains_a_few_steps_and_beats_chance(name: str, synth: MultimodalDataset) -> None:
    torch.manual_seed(0)
    model = mmbench.create_model(name, synth.modalities, synth.n_classes)
    before = split_accuracy(model, synth.val)
    report = StandardRecipe().fit(model, synth, StandardConfig(epochs=6, batch_size=32, lr=3e-3), seed=0)
    assert report.epochs_run >= 1
    after = split_accuracy(model, synth.test)
    assert after > 1.0 / synth.n_classes + 0.15, f"{name}: test accuracy {after:.3f} (before {before:.3f})"


@pytest.mark.parametrize("name", MODELS)
def test_encode_then_fuse_equals_forward(name: str, synth: MultimodalDataset) -> None:
    torch.manual_seed(0)
    model = mmbench.create_model(name, synth.modalities, synth.n_classes).eval()
    batch, _ = synth.test.rows(slice(0, 5))
    if not model.has_encoders:
        assert len(list(model.encoders)) == 0
        return
    with torch.no_grad():
        features = model.encode(batch)
        assert set(features) <= set(synth.modality_names)
        torch.testing.assert_close(model.fuse_and_classify(features), model(batch), rtol=0, atol=0)


@pytest.mark.parametrize("name", MODELS)
def test_gradients_reach_continuous_inputs(name: str, synth: MultimodalDataset) -> None:
    """Attacks need input gradients: every continuous modality a model reads must get one."""
    torch.manual_seed(0)
    model = mmbench.create_model(name, synth.modalities, synth.n_classes).eval()
    batch, labels = synth.test.rows(slice(0, 4))
    batch = {k: (v.clone().requires_grad_(True) if v.is_floating_point() else v) for k, v in batch.items()}
    torch.nn.functional.cross_entropy(model(batch), labels).backward()
    read = set(model.encoders) if model.has_encoders else set(synth.modality_names)
    used = [m.name for m in synth.modalities if m.is_continuous and m.name in read]
    assert used
    for mod in used:
        assert batch[mod].grad is not None and batch[mod].grad.abs().sum() > 0, mod


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
