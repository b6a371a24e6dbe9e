"""Every registered model, on generated data that fits it (mmbench.testing.fitting): logits,
training, input gradients, the encode/fuse split, missing-modality sweeps, every attack's
invariants, devices, and MultiBench's real file formats."""

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
from mmbench.perturb.adversarial import Attack, adversarial
from mmbench.perturb.attacks import CATALOGUE, attack_spec
from mmbench.plan.cells import expand_perturbation
from mmbench.registry import DATASETS, MODELS
from mmbench.testing.fitting import EPS, FAST, model_fit, model_params
from mmbench.train.standard import StandardConfig, StandardRecipe

NAMES = MODELS.names()
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
ROWS = {"batch": 6, "indexed": 6, "per_sample": 2}
ATTACKS = sorted(CATALOGUE)


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


def _attack_cases(attack: str, data: MultimodalDataset) -> list[Attack]:
    """The attack on each continuous modality it can target, and jointly where it can."""
    spec = attack_spec(attack)
    fits = [m for m in data.modalities if m.is_continuous
            and (spec.target_check is None or spec.target_check((m,)) is None)]
    targets = [m.name for m in fits]
    if len(fits) > 1 and len(fits) == sum(m.is_continuous for m in data.modalities):
        targets.append("all")
    if not targets:
        why = [spec.target_check((m,)) for m in data.modalities if m.is_continuous and spec.target_check]
        pytest.skip(f"attack '{attack}' fits no modality of this data ({why[0] if why else 'none is continuous'})")
    norm = spec.norms[0]
    opts = {attack: FAST[attack]} if attack in FAST else None
    return adversarial(data.modalities, data.n_classes, attacks=[attack], eps=[EPS[norm]], norm=norm,
                       targets=targets, options=opts)  # type: ignore[return-value]


@pytest.mark.parametrize("attack", ATTACKS)
@pytest.mark.parametrize("name", NAMES)
def test_every_attack_keeps_the_invariants(name: str, attack: str) -> None:
    """Non-targets bit-identical, shapes kept, values in bounds, the budget held (also by a
    bounded attack's raw output), and the same seed gives the same result."""
    data = fitted(name)
    model = built(name, data).eval()
    batch, labels = data.test.rows(slice(0, ROWS[attack_spec(attack).mode]))
    cases = _attack_cases(attack, data)
    for case in cases:
        raw = case.raw(model, batch, labels, seed=5)
        out = case.apply(model, batch, labels, seed=5)
        targets = {s.name for s in case.specs}
        for spec in data.modalities:
            if spec.name not in targets:
                assert torch.equal(out[spec.name], batch[spec.name]), (case.name, spec.name)
            else:
                assert out[spec.name].shape == batch[spec.name].shape
                assert float(out[spec.name].min()) >= spec.lo and float(out[spec.name].max()) <= spec.hi
        assert bool((case.distance(batch, out) <= case.severity + 1e-6).all())
        if case.spec.bounded:
            units = {s.name: s.from_unit(s.to_unit(raw[s.name]).clamp(0, 1)) for s in case.specs}
            assert bool((case.distance(batch, units) <= case.severity + 1e-6).all()), case.name
    again = cases[-1].apply(model, batch, labels, seed=5)
    assert all(torch.equal(again[k], out[k]) for k in out), "same seed, different result"


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
