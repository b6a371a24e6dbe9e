"""The Python API: mmbench.evaluate on an in-memory model and mmbench.run on a suite file or
mapping give the same rows, intervals and scores as the command line's engine."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import write_suite

import mmbench
from mmbench.api import DATA_ENTRY, MODEL_ENTRY
from mmbench.registry import DATASETS, MODELS
from mmbench.testing.fitting import ALL_KINDS, PlainNet
from mmbench.train.standard import StandardConfig, StandardRecipe

PERTURBATIONS = ["clean",
                 {"name": "adversarial", "params": {"attacks": ["fgsm"], "eps": [0.05], "targets": ["img", "all"]}},
                 {"name": "missing", "params": {"subsets": ["img+tab", "aud"], "imputation": ["mean"]}}]


@pytest.fixture(scope="module")
def trained():
    data = mmbench.load_dataset("synthetic", modalities=ALL_KINDS, n_samples=200, n_classes=3, seed=5)
    torch.manual_seed(0)
    model = PlainNet(data.n_classes)
    wrapped = mmbench.models.base.adapt(model, {}, data.modalities, data.n_classes, "m", "d")
    StandardRecipe().fit(wrapped, data, StandardConfig(epochs=5, batch_size=32), seed=0)
    return model.train(), data


def test_evaluate_an_in_memory_model(trained) -> None:
    model, data = trained
    before = copy.deepcopy(model.state_dict())
    result = mmbench.evaluate(model, data, PERTURBATIONS, ["accuracy", "macro_f1"], label="mine", progress=False)
    assert set(result.frame["model"]) == {"mine"} and set(result.frame["recipe"]) == {"pretrained"}
    assert set(result.frame["family"]) == {"clean", "adversarial", "missing"}
    assert result.frame[["ci_low", "ci_high"]].notna().all().all()
    assert {"clean_accuracy", "adv_robust_accuracy", "composite"} <= set(result.scores["score"])
    main = next(text for heading, text in result.boards.items() if heading.startswith("synthetic: main board"))
    assert "mine" in main and "composite" in main
    assert result.leaderboard.startswith("# Leaderboard: evaluate")
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())  # nothing trained
    assert model.training  # its mode is given back
    assert MODEL_ENTRY not in MODELS and DATA_ENTRY not in DATASETS  # nothing left registered


def test_evaluate_equals_a_suite_run_of_the_same_weights(trained, tmp_path: Path) -> None:
    """The same engine: a suite whose factory returns these weights (recipe ``pretrained``)
    gives identical rows and intervals."""
    model, data = trained
    ours = mmbench.evaluate(model, data, PERTURBATIONS, ["accuracy"], label="mine", out_dir=tmp_path / "api",
                            progress=False)
    MODELS.register("mine", lambda: copy.deepcopy(model))
    DATASETS.register("mydata", lambda: data)
    try:
        suite = {"name": "evaluate", "datasets": [{"name": "mydata", "label": data.name}],
                 "models": ["mine"], "recipes": ["pretrained"], "perturbations": PERTURBATIONS,
                 "metrics": ["accuracy"]}
        theirs = mmbench.run(suite, out_dir=tmp_path / "suite", cache_dir=tmp_path / "c", progress=False)
    finally:
        MODELS.unregister("mine")
        DATASETS.unregister("mydata")
    columns = [c for c in ours.frame.columns if c != "cell"]
    pd.testing.assert_frame_equal(ours.frame[columns], theirs.frame[columns])
    pd.testing.assert_frame_equal(ours.scores, theirs.scores)
    assert (tmp_path / "api" / "results.csv").read_text() == (tmp_path / "suite" / "results.csv").read_text()


def test_run_takes_a_path_or_a_mapping(tmp_path: Path) -> None:
    suite = {"name": "api", "datasets": [{"name": "synthetic", "params": {"modalities": ALL_KINDS, "n_samples": 120,
                                                                          "n_classes": 3, "seed": 2}}],
             "models": ["late_fusion"], "recipes": [{"name": "standard", "params": {"epochs": 2}}]}
    a = mmbench.run(suite, out_dir=tmp_path / "a", cache_dir=tmp_path / "c", progress=False)
    b = mmbench.run(write_suite(tmp_path, suite), out_dir=tmp_path / "b", cache_dir=tmp_path / "c", progress=False)
    pd.testing.assert_frame_equal(a.frame.drop(columns="cell"), b.frame.drop(columns="cell"))
    assert b.models_from_cache == 1


def test_bad_options_are_one_line_errors(trained) -> None:
    model, data = trained
    with pytest.raises(mmbench.MMBenchError, match="unknown run option 'devcie' \\(did you mean 'device'\\?\\)"):
        mmbench.evaluate(model, data, devcie="cpu")
    with pytest.raises(mmbench.MMBenchError, match="unknown perturbation 'clena'"):
        mmbench.evaluate(model, data, ["clena"])


class Renamed(torch.nn.Module):
    """forward(a, b): parameters named unlike the data's modalities (signal, tab)."""

    def __init__(self, n_classes: int = 3) -> None:
        super().__init__()
        self.a, self.b = torch.nn.Linear(2 * 16, n_classes), torch.nn.Linear(6, n_classes)

    def forward(self, a, b):
        return self.a(a.flatten(1)) + 2 * self.b(b)


class Declared(Renamed):
    mmbench_meta = {"inputs": ["signal", "tab"], "modalities": {"signal": "sequence", "tab": "vector"}}


@pytest.fixture(scope="module")
def arrays_data():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 150)
    signal = rng.normal(size=(150, 2, 16)) + labels[:, None, None]
    tab = rng.normal(size=(150, 6)) - labels[:, None]
    return mmbench.make_dataset({"signal": signal, "tab": tab}, {"signal": "sequence", "tab": "vector"}, labels)


def by_hand(model: torch.nn.Module, data) -> float:
    with torch.no_grad():
        preds = model(data.test.inputs["signal"], data.test.inputs["tab"]).argmax(1)
    return float((preds == data.test.labels).float().mean())


def clean_accuracy(result) -> float:
    return float(result.frame.query("family == 'clean' and metric == 'accuracy'")["value"].iloc[0])


def test_evaluate_reads_mmbench_meta_and_takes_inputs(arrays_data) -> None:
    torch.manual_seed(3)
    declared, renamed = Declared(), Renamed()
    renamed.load_state_dict(declared.state_dict())
    expected = by_hand(declared, arrays_data)
    assert 0.0 < expected < 1.0
    assert clean_accuracy(mmbench.evaluate(declared, arrays_data, progress=False)) == pytest.approx(expected)
    for inputs in (["signal", "tab"], {"a": "signal", "b": "tab"}):
        result = mmbench.evaluate(renamed, arrays_data, inputs=inputs, progress=False)
        assert clean_accuracy(result) == pytest.approx(expected)
    swapped = Declared()
    swapped.mmbench_meta = {"inputs": ["tab", "signal"]}  # an instance attribute; inputs= overrides it
    with pytest.raises(mmbench.MMBenchError, match="shapes cannot be multiplied"):  # tab into a's Linear(32)
        mmbench.evaluate(swapped, arrays_data, progress=False)
    assert clean_accuracy(mmbench.evaluate(swapped, arrays_data, inputs=["signal", "tab"],
                                           progress=False)) == pytest.approx(by_hand(swapped, arrays_data))


def test_evaluate_errors_advise_what_evaluate_takes(arrays_data) -> None:
    with pytest.raises(mmbench.MMBenchError) as caught:
        mmbench.evaluate(Renamed(), arrays_data, progress=False)
    message = str(caught.value)
    assert "pass inputs=[...] to mmbench.evaluate" in message and "mmbench_meta" in message
    assert "register" not in message and "\n" not in message
    with pytest.raises(mmbench.MMBenchError, match="inputs name modality 'vision'.*has signal, tab"):
        mmbench.evaluate(Renamed(), arrays_data, inputs=["vision", "tab"], progress=False)
    with pytest.raises(mmbench.MMBenchError, match="mmbench_meta must be a dict"):
        mmbench.evaluate(type("Odd", (Renamed,), {"mmbench_meta": ["signal"]})(), arrays_data, progress=False)
    assert MODEL_ENTRY not in MODELS and DATA_ENTRY not in DATASETS
