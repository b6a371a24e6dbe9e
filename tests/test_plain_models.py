"""Any torch.nn.Module is a model: called the way its forward declares, refused in one line when
it does not fit a dataset, probed once before anything trains, and measured by every family
exactly as a direct call of the module on the same inputs would be."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import write_suite
from torch import nn

import mmbench
from mmbench.cli import main
from mmbench.config.build import build_model
from mmbench.config.datasets import load_datasets
from mmbench.config.suite import load_suite
from mmbench.data.synthetic import make_synthetic
from mmbench.errors import MMBenchError
from mmbench.hashing import derive_seed
from mmbench.models.calling import PlainModel
from mmbench.plan.cells import make_plan
from mmbench.registry import MODELS
from mmbench.runner import RunOptions, run_suite
from mmbench.testing.fitting import ALL_KINDS, PlainNet
from mmbench.train.cache import CheckpointCache

SYNTH = {"name": "synthetic", "params": {"modalities": ALL_KINDS, "n_samples": 200, "n_classes": 3,
                                          "seed": 1, "ood_shift": 2.0}}


class DictNet(nn.Module):
    """forward(batch): one parameter that takes the dict of modalities."""

    def __init__(self, n_classes: int = 3) -> None:
        super().__init__()
        self.net = nn.Linear(10, n_classes)

    def forward(self, batch):
        return self.net(batch["tab"])


class Positional(nn.Module):
    """forward(x1, x2) with parameters named otherwise: mapped by ``inputs`` metadata."""

    def __init__(self, n_classes: int = 3) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(64, n_classes), nn.Linear(10, n_classes)

    def forward(self, x1, x2):
        return self.a(x1.flatten(1)) + self.b(x2)


@pytest.fixture
def registered():
    names = []

    def register(name: str, obj, **meta) -> str:
        MODELS.register(name, obj, **meta)
        names.append(name)
        return name

    yield register
    for name in names:
        MODELS.unregister(name)


def test_each_calling_convention(registered) -> None:
    data = make_synthetic(modalities=ALL_KINDS, n_samples=60, n_classes=3, seed=0)
    batch, _ = data.test.rows(slice(0, 4))
    registered("kw", PlainNet)
    registered("dict_net", DictNet)
    registered("positional", Positional, inputs=["img", "tab"])
    for name, style, reads in (("kw", "keywords", ("img", "aud", "tab", "txt")),
                               ("dict_net", "dict", ("img", "aud", "tab", "txt")),
                               ("positional", "positional", ("img", "tab"))):
        model = mmbench.create_model(name, data.modalities, data.n_classes)
        assert isinstance(model, PlainModel) and model.call.style == style
        assert model.input_modalities == reads and model(batch).shape == (4, 3)
    direct = model.module(batch["img"], batch["tab"])
    assert torch.equal(model(batch), direct)


def test_a_model_that_does_not_fit_the_dataset_is_refused_at_planning(registered, tmp_path: Path, capsys) -> None:
    class Named(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(1, 3)

        def forward(self, vision, audio, text):
            return self.lin(text)

    registered("named", Named)
    registered("declared", PlainNet, modalities={"img": "vector"})
    for model, needle in (("named", "model 'named' takes vision, audio, text (its forward's parameters) "
                                    "but dataset 'synthetic' has modalities img, aud, tab, txt"),
                          ("declared", "model 'declared' declares modality 'img' as vector, but in "
                                       "dataset 'synthetic' it is image")):
        suite = write_suite(tmp_path, {"datasets": [SYNTH], "models": [model]})
        assert main(["validate", str(suite)]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and needle in err, err
    assert not (tmp_path / "results").exists()


class WrongClasses(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(10, 5)

    def forward(self, tab):
        return self.lin(tab)


class WrongShape(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(11, 3)

    def forward(self, tab):
        return self.lin(tab)


class WrongDtype(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(10, 3)

    def forward(self, tab):
        return self.lin(tab.double())


class ReturnsTuple(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(10, 3)

    def forward(self, tab):
        return self.lin(tab), tab


@pytest.mark.parametrize("cls,needle", [
    (WrongClasses, "forward returned shape [2, 5] for 2 rows; the dataset has 3 classes"),
    (WrongShape, "a forward pass on 2 rows failed: RuntimeError: mat1 and mat2 shapes cannot be multiplied"),
    (WrongDtype, "a forward pass on 2 rows failed: RuntimeError"),
    (ReturnsTuple, "returned tuple, not a logits tensor"),
])
def test_validate_runs_each_model_once(cls, needle: str, registered, tmp_path: Path, capsys) -> None:
    registered("probed", cls)
    suite = write_suite(tmp_path, {"datasets": [SYNTH], "models": ["probed"]})
    for command in (["validate", str(suite)], ["run", str(suite), "--out", str(tmp_path / "o")]):
        assert main(command) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "Traceback" not in err, err
        assert "model 'probed' on dataset 'synthetic'" in err and needle in err, err
    assert not (tmp_path / "o").exists()  # nothing written


def test_validate_names_the_inputs_it_gave(registered, tmp_path: Path, capsys) -> None:
    registered("probed", WrongShape)
    suite = write_suite(tmp_path, {"datasets": [SYNTH], "models": ["probed"]})
    assert main(["validate", str(suite)]) == 2
    assert "(inputs: tab [2, 10] float32)" in capsys.readouterr().err


PERTURBATIONS = [
    "clean",
    {"name": "adversarial", "params": {"attacks": ["fgsm", "pgd", "apgd"], "eps": [0.1], "targets": ["each", "all"],
                                       "options": {"pgd": {"steps": 3}, "apgd": {"steps": 3}}}},
    {"name": "adversarial", "params": {"attacks": ["square"], "eps": [0.1], "targets": ["img+tab"],
                                       "options": {"square": {"n_queries": 20}}}, "label": "square"},
    {"name": "missing", "params": {"subsets": "all", "imputation": ["zeros", "mean", "noise"]}},
    {"name": "random_dropout", "params": {"rates": [0.3, 0.6], "imputation": ["mean"]}},
    {"name": "shift", "params": {"corruptions": ["gaussian_noise", "feature_dropout"], "severities": [2, 4]}},
    "natural_shift",
]


def test_every_family_equals_a_direct_call_of_the_module(registered, tmp_path: Path) -> None:
    """Each cell's accuracy is the accuracy of the user's own module, called directly on the
    inputs the perturbation produced with the cell's seed."""
    registered("plain", PlainNet)
    suite_path = write_suite(tmp_path, {
        "datasets": [SYNTH], "models": ["plain"], "perturbations": PERTURBATIONS, "metrics": ["accuracy"],
        "recipes": [{"name": "standard", "params": {"epochs": 5, "batch_size": 32}}],
        "eval": {"batch_size": 1000}})
    result = run_suite(suite_path, RunOptions(out_dir=tmp_path / "o", cache_dir=tmp_path / "c", progress=False))
    assert not result.failed
    assert {"clean", "adversarial", "missing", "random_dropout", "shift", "natural_shift",
            "subset_vote"} == set(result.frame["family"])
    suite = load_suite(suite_path)
    data = load_datasets(suite)["synthetic"]
    plan = make_plan(suite, {"synthetic": data})
    (train,) = plan.train_cells
    model = build_model("plain", data.modalities, data.n_classes, {})
    assert CheckpointCache(tmp_path / "c").load(train.key, model) is not None
    model.eval()
    values = result.frame.set_index(["perturbation", "target", "severity"])["value"]
    for ev in plan.eval_cells:
        p = ev.perturbation
        split = data.groups[p.group] if p.group else data.test
        batch, labels = split.rows(slice(None))
        seed = derive_seed(ev.inputs_key, "eval")
        hits = []
        for draw in range(p.draws):  # random corruptions: the mean over their draws
            inputs = p.apply(model, batch, labels, seed if draw == 0 else derive_seed(seed, "draw", draw))
            with torch.no_grad():
                direct = model.module(inputs["img"], inputs["aud"], inputs["tab"], inputs["txt"])
            hits.append((direct.argmax(dim=1) == labels).double())
        expected = float(torch.cat(hits).mean())
        assert values[(p.name, p.target, p.severity)] == pytest.approx(expected, abs=1e-12), (p.name, p.target)
    adversarial = result.frame[result.frame["family"] == "adversarial"]
    assert {"img", "aud", "tab", "img+aud+tab", "img+tab"} <= set(adversarial["target"])


def test_adversarial_and_dropout_training_on_a_plain_module(registered, tmp_path: Path) -> None:
    registered("plain", PlainNet)
    recipes = [{"name": "adversarial", "params": {"epochs": 2, "eps": 0.05, "steps": 2, "target": "img"}},
               {"name": "modality_dropout", "params": {"epochs": 2, "rate": 0.5}}]
    suite = write_suite(tmp_path, {"datasets": [SYNTH], "models": ["plain"], "recipes": recipes})
    result = run_suite(suite, RunOptions(out_dir=tmp_path / "o", cache_dir=tmp_path / "c", progress=False))
    assert not result.failed and set(result.frame["recipe"]) == {"adversarial", "modality_dropout"}


def test_native_imputation_is_refused_for_a_plain_module(registered, tmp_path: Path) -> None:
    registered("plain", PlainNet)
    suite = write_suite(tmp_path, {"datasets": [SYNTH], "models": ["plain"], "perturbations": [
        {"name": "missing", "params": {"subsets": ["img"], "imputation": ["native"]}}]})
    with pytest.raises(MMBenchError, match="handle missing modalities natively"):
        run_suite(suite, RunOptions(out_dir=tmp_path / "o", cache_dir=tmp_path / "c"))


class VarArgs(nn.Module):
    """forward(*inputs): every modality positionally; HF-style output with a 'logits' entry;
    the class count under the name num_classes."""

    def __init__(self, num_classes: int = 2) -> None:
        super().__init__()
        self.lin = nn.Linear(10, num_classes)

    def forward(self, *inputs):
        return {"logits": self.lin(inputs[2]), "hidden": inputs[0]}


def test_var_positional_forward_num_classes_and_logits_entries(registered) -> None:
    data = make_synthetic(modalities=ALL_KINDS, n_samples=60, n_classes=3, seed=0)
    registered("varargs", VarArgs)
    model = mmbench.create_model("varargs", data.modalities, data.n_classes)
    batch, _ = data.test.rows(slice(0, 4))
    assert model.call.style == "positional" and model.input_modalities == ("img", "aud", "tab", "txt")
    assert model(batch).shape == (4, 3)  # num_classes was filled in with the dataset's 3


class Hinted(nn.Module):
    """Names that say their kinds, sizes that adapt (lazy layers), nothing declared."""

    def __init__(self, n_classes: int = 3) -> None:
        super().__init__()
        self.v, self.a, self.t = nn.LazyLinear(8), nn.LazyLinear(8), nn.LazyLinear(8)
        self.head = nn.Linear(24, n_classes)

    def forward(self, vision, audio, text):
        assert vision.dim() == 4 and audio.dim() == 3, "kinds were guessed from the names"
        return self.head(torch.cat([self.v(vision.flatten(1)), self.a(audio.flatten(1)), self.t(text)], 1))


class NeedsWidth(nn.Module):
    def __init__(self, width: int, n_classes: int = 3) -> None:
        super().__init__()
        self.lin = nn.Linear(10, width)
        self.head = nn.Linear(width, n_classes)

    def forward(self, tab):
        return self.head(self.lin(tab).relu())


def test_contract_data_fits_what_a_model_declares_or_derives(registered) -> None:
    from mmbench.testing.fitting import model_fit

    registered("hinted", Hinted)
    fit = model_fit("hinted")
    assert fit.data is not None, fit.reason
    assert [(m.name, m.kind.value) for m in fit.data.modalities] == [
        ("vision", "image"), ("audio", "sequence"), ("text", "vector")]
    registered("needs_width", NeedsWidth)
    assert model_fit("needs_width").data is None and "example={'width': ...}" in model_fit("needs_width").reason
    registered("needs_width_example", NeedsWidth, example={"width": 6})
    fit = model_fit("needs_width_example")
    assert fit.data is not None and fit.data.modality_names == ("tab",)
