"""Adversarial robustness: every attack on every model and target keeps the invariants; the
harness agrees with a plain torchattacks closure; subset-calling attacks stay aligned."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchattacks

import mmbench
from mmbench.data.base import MultimodalDataset
from mmbench.data.synthetic import make_synthetic
from mmbench.errors import MMBenchError
from mmbench.perturb.adversarial import adversarial
from mmbench.perturb.attacks import CATALOGUE, REFUSED, attack_spec
from mmbench.perturb.packing import AlignmentError, IndexedModel, Layout
from mmbench.testing.fitting import FAST
from mmbench.train.standard import StandardConfig, StandardRecipe

MODALITIES = [
    {"name": "img", "kind": "image", "shape": [1, 6, 6], "informativeness": 1.0},
    {"name": "aud", "kind": "sequence", "shape": [2, 8], "informativeness": 0.8},
    {"name": "tab", "kind": "vector", "shape": [6], "informativeness": 0.8},
    {"name": "txt", "kind": "tokens", "shape": [4], "informativeness": 0.8, "vocab_size": 8},
]


@pytest.fixture(scope="module")
def data() -> MultimodalDataset:
    return make_synthetic(modalities=MODALITIES, n_samples=200, n_classes=4, noise=0.6, seed=11)


def test_rgb_only_attack_runs_on_a_three_channel_image() -> None:
    rgb = make_synthetic(modalities=[{"name": "rgb", "kind": "image", "shape": [3, 8, 8]},
                                     {"name": "tab", "kind": "vector", "shape": [4]}],
                         n_samples=80, n_classes=4, seed=0)
    model = mmbench.create_model("late_fusion", rgb.modalities, rgb.n_classes).eval()
    batch, labels = rgb.test.rows(slice(0, 4))
    (case,) = adversarial(rgb.modalities, 4, attacks=["tifgsm"], eps=[0.1], targets=["rgb"],
                          options={"tifgsm": {"steps": 2}})
    out = case.apply(model, batch, labels, seed=0)
    assert torch.equal(out["tab"], batch["tab"])
    assert bool((case.distance(batch, out) <= 0.1 + 1e-6).all())
    with pytest.raises(MMBenchError, match="3-channel"):
        adversarial(rgb.modalities, 4, attacks=["tifgsm"], eps=[0.1], targets=["tab"])


@pytest.fixture(scope="module")
def trained_pair():
    """A trained two-modality model (image + vector) and its test split."""
    pair = make_synthetic(modalities=[
        {"name": "img", "kind": "image", "shape": [1, 8, 8], "informativeness": 0.7},
        {"name": "tab", "kind": "vector", "shape": [8], "informativeness": 0.7}],
        n_samples=400, n_classes=4, noise=0.8, seed=2)
    torch.manual_seed(0)
    model = mmbench.create_model("seed_concat", pair.modalities, pair.n_classes)
    StandardRecipe().fit(model, pair, StandardConfig(epochs=15), seed=0)
    return model.eval(), pair


def _closure_accuracy(model, data, attack_cls, target: str, seed: int, **kwargs) -> float:
    """What a user gets with torchattacks alone on a model closed over the other modality."""
    batch, labels = data.test.rows(slice(None))
    other = "tab" if target == "img" else "img"
    spec = data.spec(target)

    class Closure(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, x):
            return self.model({target: spec.from_unit(x).reshape(len(x), *spec.shape), other: batch[other]})

    x = spec.to_unit(batch[target])
    x = x if spec.kind.value == "image" else x.reshape(len(x), 1, 1, -1)
    torch.manual_seed(seed)
    adv = attack_cls(Closure(), **kwargs)(x, labels)
    adv_batch = {target: spec.from_unit(adv).reshape(len(x), *spec.shape), other: batch[other]}
    return float((model(adv_batch).argmax(1) == labels).float().mean())


@pytest.mark.parametrize("attack,cls,extra", [
    ("fgsm", torchattacks.FGSM, {}),
    ("pgd", torchattacks.PGD, {"alpha": 0.02, "steps": 5}),
])
@pytest.mark.parametrize("target", ["img", "tab"])
def test_harness_matches_a_plain_torchattacks_closure(trained_pair, attack, cls, extra, target) -> None:
    model, data = trained_pair
    batch, labels = data.test.rows(slice(None))
    opts = {attack: extra} if extra else None
    (case,) = adversarial(data.modalities, 4, attacks=[attack], eps=[0.2], targets=[target], options=opts)
    out = case.apply(model, batch, labels, seed=3)
    harness = float((model(out).argmax(1) == labels).float().mean())
    plain = _closure_accuracy(model, data, cls, target, seed=3, eps=0.2, **extra)
    clean = float((model(batch).argmax(1) == labels).float().mean())
    assert harness == plain
    assert not torch.equal(out[target], batch[target]), "the attack changed nothing"
    if target == "img":  # the model leans on the image: attacking it must cost accuracy
        assert harness < clean - 0.05


class Recorder(torch.nn.Module):
    """Wraps the fusion model and records every batch the attack makes it evaluate."""

    def __init__(self, model) -> None:
        super().__init__()
        self.model = model
        self.n_classes = model.n_classes
        self.calls: list[dict[str, torch.Tensor]] = []

    def forward(self, batch):
        self.calls.append({k: v.detach().clone() for k, v in batch.items()})
        return self.model(batch)


def _rows_of(values: torch.Tensor, clean: torch.Tensor) -> torch.Tensor:
    """Which clean row each of ``values`` is an exact copy of."""
    return torch.tensor([int((clean == v).all(dim=1).nonzero()[0]) for v in values])


def _code_rows(x: torch.Tensor, layout: Layout) -> torch.Tensor:
    """The test's own reading of the index code: the bits, thresholded at 0.5."""
    bits = x[..., layout.base[2]:].reshape(len(x), -1)[:, :layout.bits] > 0.5
    return (bits.long() * 2 ** torch.arange(layout.bits)).sum(dim=1)


@pytest.mark.parametrize("attack", ["apgd", "apgdt", "fab", "square", "autoattack", "deepfool"])
def test_subset_calling_attacks_keep_modalities_aligned(trained_pair, attack, monkeypatch) -> None:
    """Every batch the attack evaluates pairs each (perturbed) image with the clean vector of
    its own row: checked by the test's own decoding of the code, and, for attacks that stay in
    the eps-ball, by the image itself lying within eps of that row's clean image."""
    model, data = trained_pair
    batch, labels = data.test.rows(slice(0, 40))
    seen: list[tuple[torch.Tensor, torch.Tensor]] = []
    original = IndexedModel.forward

    def spy(self, x):
        seen.append((_code_rows(x.detach(), self.layout), x.detach().clone()))
        return original(self, x)

    monkeypatch.setattr(IndexedModel, "forward", spy)
    recorder = Recorder(model).eval()
    norm, eps = ("L2", 0.5) if attack == "deepfool" else ("Linf", 0.1)
    (case,) = adversarial(data.modalities, 4, attacks=[attack], eps=[eps], norm=norm,
                          targets=["img"], options={attack: FAST[attack]} if attack in FAST else None)
    out = case.apply(recorder, batch, labels, seed=0)
    assert torch.equal(out["tab"], batch["tab"])
    assert {len(c["tab"]) for c in recorder.calls} - {40}, f"{attack} never evaluated a subset"
    if case.spec.mode == "per_sample":  # one row at a time: each call repeats one row's vector
        assert not seen
        for call in recorder.calls:
            assert len(torch.unique(_rows_of(call["tab"], batch["tab"]))) == 1
        return
    assert len(seen) == len(recorder.calls)
    for (code_rows, _), call in zip(seen, recorder.calls, strict=True):
        assert torch.equal(_rows_of(call["tab"], batch["tab"]), code_rows), f"{attack}: misaligned"
        if case.spec.bounded and attack != "autoattack":  # AutoAttack's FAB-T leaves the ball
            gap = (call["img"] - batch["img"][code_rows]).abs().flatten(1).amax(dim=1)
            assert bool((gap <= eps + 1e-6).all()), f"{attack}: an image left its row's eps-ball"


def test_indexed_wrapper_decodes_subsets_and_detects_corruption(trained_pair) -> None:
    model, data = trained_pair
    batch, labels = data.test.rows(slice(0, 20))
    layout = Layout((data.spec("img"),), 20, code=True)
    x = layout.pack(batch, torch.arange(20))
    wrapper = IndexedModel(model, layout, batch)
    subset = torch.tensor([7, 3, 19, 3])
    torch.testing.assert_close(wrapper(x[subset]), model({k: v[subset] for k, v in batch.items()}))
    noisy = (x + 0.49 * torch.sign(torch.randn_like(x))).clamp(0, 1)
    assert torch.equal(layout.decode_rows(noisy), torch.arange(20))
    broken = x.clone()
    broken[:, :, :, 8:] = 0.0  # bits and their complement now agree: the code is corrupt
    with pytest.raises(AlignmentError):
        layout.decode_rows(broken)


def test_worst_case_is_the_per_row_minimum_of_the_reported_attacks(tmp_path) -> None:
    """The ensemble row reruns nothing: a row counts as robust only if every reported attack
    left it correct, so the worst case is never above any reported attack (regression: it used
    to rerun PGD with another seed on the rows FGSM did not fool, and could end up above PGD)."""
    from conftest import tiny_suite, write_suite

    from mmbench.report.publish import with_derived
    from mmbench.runner import RunOptions, run_suite
    from mmbench.store.database import Store

    adv = {"name": "adversarial", "params": {"attacks": ["fgsm", "pgd", "square"], "eps": [0.05, 0.2],
                                             "targets": ["img", "all"], "ensemble": True,
                                             "options": {"pgd": {"steps": 3}, "square": {"n_queries": 20}}}}
    result = run_suite(write_suite(tmp_path, tiny_suite(models=["late_fusion"], perturbations=["clean", adv])),
                       RunOptions(out_dir=tmp_path / "o", cache_dir=tmp_path / "c", progress=False))
    acc = result.frame[(result.frame["metric"] == "accuracy") & (result.frame["family"] == "adversarial")]
    worst = acc[acc["attack"] == "worst"]
    assert len(worst) == 4 and set(worst["perturbation"]) == {"worst[fgsm,pgd,square]-Linf"}
    store = Store(tmp_path / "o")
    try:
        stored = [c for c in acc["cell"] if not c.startswith("worst:")]
        _, outcomes = with_derived(store.facts(stored), store.samples(stored))
    finally:
        store.close()
    for _case, group in acc.groupby(["target", "severity"]):
        singles = group[group["attack"] != "worst"]
        (cell,) = group.loc[group["attack"] == "worst", "cell"]
        assert group.loc[group["cell"] == cell, "value"].iloc[0] <= singles["value"].min()
        correct = [outcomes[c].preds == outcomes[c].labels for c in singles["cell"]]
        assert np.array_equal(outcomes[cell].preds == outcomes[cell].labels, np.logical_and.reduce(correct))


@pytest.mark.parametrize("params,match", [
    ({"attacks": ["pgdd"], "eps": [0.1]}, r"unknown attack 'pgdd' \(did you mean 'pgd'\?\)"),
    ({"attacks": ["pgd"], "eps": [-0.1]}, "eps must be finite numbers >= 0"),
    ({"attacks": ["pgd"], "eps": [0.1], "targets": ["imgg"]}, r"unknown target modality 'imgg' \(did you mean 'img'\?\)"),
    ({"attacks": ["pgd"], "eps": [0.1], "targets": ["txt"]}, "holds token ids"),
    ({"attacks": ["pgd"]}, "attack 'pgd' needs 'eps'"),
    ({"attacks": ["pgdl2"], "eps": [0.1]}, "runs in L2 only; put it in an entry with norm: L2"),
    ({"attacks": ["pgd"], "eps": [0.1], "options": {"pgd": {"stepz": 3}}}, r"no option 'stepz' \(did you mean 'steps'\?\)"),
    ({"attacks": ["pgd"], "eps": [0.1], "options": {"fgsm": {}}}, "not in attacks"),
    ({"attacks": ["lgv"], "eps": [0.1]}, "not supported: it trains surrogate models"),
    ({"attacks": ["apgd"], "eps": [0.6]}, "eps < 0.5"),
    ({"attacks": ["onepixel"], "eps": [2.0], "norm": "L0"}, r"fraction of features in \(0, 1\]"),
    ({"attacks": ["pixle"], "eps": [0.1], "norm": "L0", "targets": ["tab"]}, "square image"),
    ({"attacks": [], "eps": [0.1]}, "must list at least one attack"),
])
def test_bad_attack_parameters(data: MultimodalDataset, params, match) -> None:
    with pytest.raises(MMBenchError, match=match) as info:
        adversarial(data.modalities, data.n_classes, **params)
    assert "\n" not in str(info.value)


def test_targeted_dlr_attacks_need_four_classes() -> None:
    three = make_synthetic(modalities=MODALITIES[:2], n_samples=60, n_classes=3, seed=0)
    with pytest.raises(MMBenchError, match="needs at least 4 classes"):
        adversarial(three.modalities, 3, attacks=["autoattack"], eps=[0.1])


def test_every_torchattacks_attack_is_run_or_refused_with_a_reason() -> None:
    import inspect

    classes = {n.lower() for n, c in vars(torchattacks).items()
               if inspect.isclass(c) and issubclass(c, torchattacks.attack.Attack) and n != "Attack"}
    known = {s.cls.lower() for s in CATALOGUE.values()} | set(REFUSED)
    assert classes <= known, f"not catalogued: {sorted(classes - known)}"
    for name, reason in REFUSED.items():
        with pytest.raises(MMBenchError, match="not supported") as info:
            attack_spec(name)
        assert reason in str(info.value)


def test_adversarial_training_buys_robustness(trained_pair) -> None:
    from mmbench.config.params import build_config
    from mmbench.registry import RECIPES

    standard, data = trained_pair
    recipe = RECIPES.get("adversarial")()
    config = build_config(recipe.config_type, {"epochs": 15, "eps": 0.15, "steps": 3,
                                               "target": "img"}, "recipe 'adversarial'")
    torch.manual_seed(0)
    robust = mmbench.create_model("seed_concat", data.modalities, data.n_classes)
    recipe.fit(robust, data, config, seed=0)
    batch, labels = data.test.rows(slice(None))
    (pgd,) = adversarial(data.modalities, 4, attacks=["pgd"], eps=[0.15], targets=["img"])
    acc = {name: float((m(pgd.apply(m.eval(), batch, labels, 0)).argmax(1) == labels).float().mean())
           for name, m in (("standard", standard), ("adversarial", robust))}
    assert acc["adversarial"] > acc["standard"] + 0.1, acc


def test_adversarial_recipe_rejects_an_unknown_target(data: MultimodalDataset) -> None:
    from mmbench.config.params import build_config
    from mmbench.registry import RECIPES

    recipe = RECIPES.get("adversarial")()
    config = build_config(recipe.config_type, {"target": "imgg"}, "recipe 'adversarial'")
    with pytest.raises(MMBenchError, match="unknown target modality 'imgg'"):
        recipe.check(config, data)
    with pytest.raises(MMBenchError, match="eps < 0.5"):
        build_config(recipe.config_type, {"eps": 0.7}, "recipe 'adversarial'")


def test_fab_is_not_offered_in_l1_which_torchattacks_cannot_run() -> None:
    """torchattacks 3.5.1's FAB crashes (UnboundLocalError) in L1: asking for it is one line at
    planning, not a failed cell per model."""
    from mmbench.perturb.attacks import attack_spec

    assert "L1" not in attack_spec("fab").norms
    data = make_synthetic(modalities=MODALITIES[:2], n_samples=40, n_classes=3, seed=0)
    with pytest.raises(MMBenchError, match="attack .fab. runs in Linf/L2 only"):
        adversarial(data.modalities, data.n_classes, attacks=["fab"], eps=[1.0], norm="L1")
