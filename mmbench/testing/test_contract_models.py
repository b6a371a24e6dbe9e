"""Every registered model, on generated data that fits it (mmbench.testing.fitting): logits,
training, input gradients, the encode/fuse split, missing-modality sweeps, the attacks'
invariants (one attack per mode and norm unless MMBENCH_CONTRACT_ATTACKS=all; see
mmbench.testing.attacks), devices, and MultiBench's real file formats."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from mmbench.config.build import create_model
from mmbench.config.suite import Component
from mmbench.data.base import MultimodalDataset
from mmbench.errors import MMBenchError
from mmbench.execution.evaluate import BatchCache
from mmbench.models.base import FusionModel
from mmbench.plan.cells import expand_perturbation
from mmbench.registry import DATASETS, MODELS
from mmbench.testing.attacks import case_id, check_invariants, selected
from mmbench.testing.fitting import model_fit, model_params
from mmbench.train.standard import StandardConfig, StandardRecipe

NAMES = MODELS.names()
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
#: (attack, norm) cases: a representative one per attack mode and norm unless
#: MMBENCH_CONTRACT_ATTACKS says otherwise (mmbench.testing.attacks)
ATTACKS = selected()


def fitted(name: str) -> MultimodalDataset:
    """The model's fitting data, or a skip naming the declaration to add."""
    fit = model_fit(name)
    if fit.data is None:
        pytest.skip(fit.reason)
    return fit.data


def built(name: str, data: MultimodalDataset) -> nn.Module:
    torch.manual_seed(0)
    return create_model(name, data.modalities, data.n_classes, **model_params(name))


@pytest.mark.parametrize("name", NAMES)
def test_forward_gives_finite_logits(name: str) -> None:
    data = fitted(name)
    model = built(name, data).eval()
    batch, _ = data.test.rows(slice(0, 7))
    with torch.no_grad():
        logits = model(batch)
    assert logits.shape == (7, data.n_classes) and torch.isfinite(logits).all()


@pytest.mark.parametrize("name", NAMES)
def test_training_lowers_the_loss(name: str) -> None:
    data = fitted(name)
    model = built(name, data)
    before = _train_loss(model, data)
    StandardRecipe().fit(model, data, StandardConfig(epochs=6, batch_size=32, lr=3e-3, patience=0), seed=0)
    assert _train_loss(model, data) < before


def _train_loss(model: nn.Module, data: MultimodalDataset) -> float:
    model.eval()
    with torch.no_grad():
        return float(nn.functional.cross_entropy(model(data.train.inputs), data.train.labels))


@pytest.mark.parametrize("name", NAMES)
def test_gradients_reach_continuous_inputs(name: str) -> None:
    """Attacks need input gradients: every continuous modality a model reads must get one."""
    data = fitted(name)
    model = built(name, data).eval()
    batch, labels = data.test.rows(slice(0, 4))
    batch = {k: (v.clone().requires_grad_(True) if v.is_floating_point() else v) for k, v in batch.items()}
    nn.functional.cross_entropy(model(batch), labels).backward()
    reads = set(getattr(model, "input_modalities", data.modality_names))
    used = [m.name for m in data.modalities if m.is_continuous and m.name in reads]
    if not used:
        pytest.skip(f"model '{name}' reads no continuous modality of its data: nothing to attack")
    blocked = [m for m in used if batch[m].grad is None or not bool(batch[m].grad.abs().sum() > 0)]
    if blocked and MODELS.entry(name).source != "builtin":  # e.g. a frozen encoder under no_grad
        pytest.skip(f"model '{name}': no gradient reaches {', '.join(blocked)}, so white-box attacks on "
                    "it measure nothing (black-box attacks such as square still apply)")
    assert not blocked, blocked


@pytest.mark.parametrize("name", NAMES)
def test_encode_then_fuse_equals_forward(name: str) -> None:
    data = fitted(name)
    model = built(name, data).eval()
    if not isinstance(model, FusionModel):
        pytest.skip(f"model '{name}' is a plain module: no encode/fuse split to check (subclass "
                    "mmbench.models.FusionModel with encoders for encoder reuse in sweeps)")
    if not model.has_encoders:
        pytest.skip(f"model '{name}' fuses raw inputs: it has no encoders to split off")
    batch, _ = data.test.rows(slice(0, 5))
    with torch.no_grad():
        features = model.encode(batch)
        assert set(features) <= set(data.modality_names)
        torch.testing.assert_close(model.fuse_and_classify(features), model(batch), rtol=0, atol=0)


@pytest.mark.parametrize("name", NAMES)
def test_missing_modality_logits_equal_a_full_forward(name: str) -> None:
    """Every kept subset under every imputation: the sweep's (possibly cached) logits equal the
    model's forward on the imputed batch, bit for bit."""
    data = fitted(name)
    model = built(name, data).eval()
    imputations = ["zeros", "mean", "noise"] + (["native"] if MODELS.entry(name).meta.get("handles_missing") else [])
    batch, labels = data.test.rows(slice(0, 9))
    store: dict = {}
    for case in expand_perturbation(Component("missing", {"subsets": "all", "imputation": imputations}), data):
        fast = case.logits(model, batch, labels, 0, BatchCache(store, (0,)))
        with torch.no_grad():
            full = model(case.apply(model, batch, labels, 0))
        assert torch.equal(fast, full), (case.name, case.target)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", NAMES)
def test_runs_on_the_device(name: str, device: str) -> None:
    data = fitted(name).to(device)
    model = built(name, data).to(device).eval()
    batch, _ = data.test.rows(slice(0, 8))
    with torch.no_grad():
        logits = model(batch)
    assert logits.device.type == device and logits.shape == (8, data.n_classes)


@pytest.mark.parametrize("case", ATTACKS, ids=case_id)
@pytest.mark.parametrize("name", NAMES)
def test_attacks_keep_the_invariants(name: str, case: tuple[str, str]) -> None:
    """Non-targets bit-identical, shapes kept, values in bounds, the budget held, seeded; for a
    representative attack per mode and norm (every attack: MMBENCH_CONTRACT_ATTACKS=all)."""
    data = fitted(name)
    check_invariants(built(name, data).eval(), data, *case)


@pytest.fixture(scope="module")
def formats(tmp_path_factory) -> dict[str, MultimodalDataset]:
    """MultiBench's AV-MNIST and MOSEI formats, from small fixture files."""
    from mmbench.data.affect import write_fixture as write_affect
    from mmbench.data.avmnist import write_fixture as write_avmnist

    root = tmp_path_factory.mktemp("formats")
    write_avmnist(root)
    params = write_affect(root, "mosei")
    return {"avmnist": DATASETS.get("avmnist")(val_rows=10, data_root=str(root)),
            "mosei": DATASETS.get("mosei")(**{**params, "trust_pickle": True})}


@pytest.mark.parametrize("dataset", ["avmnist", "mosei"])
@pytest.mark.parametrize("name", NAMES)
def test_trains_a_step_on_the_real_formats(name: str, dataset: str, formats: dict) -> None:
    fitted(name)  # a model whose inputs cannot be told is skipped here too
    data = formats[dataset]
    torch.manual_seed(0)
    try:
        model = create_model(name, data.modalities, data.n_classes, **model_params(name))
    except MMBenchError as exc:  # fixed inputs that are not this format's modalities
        pytest.skip(f"model '{name}' does not take {dataset}'s modalities: {exc}")
    before = [p.detach().clone() for p in model.parameters()]
    StandardRecipe().fit(model, data, StandardConfig(epochs=1, batch_size=16), seed=0)
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


def test_every_model_has_fitting_data_or_a_reason() -> None:
    for name in NAMES:
        fit = model_fit(name)
        assert fit.data is not None or "declare" in fit.reason, (name, fit.reason)
