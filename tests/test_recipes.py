"""Every registered recipe, parametrized from the registry: trains, is seeded, improves."""

from __future__ import annotations

import pytest
import torch

import mmbench
from mmbench.data.base import MultimodalDataset
from mmbench.engine.params import build_config, param_defaults
from mmbench.errors import MMBenchError
from mmbench.registry import RECIPES
from mmbench.train.base import split_accuracy

FAST = {"epochs": 3, "batch_size": 32}


def _fit(name: str, data: MultimodalDataset, seed: int):
    recipe = RECIPES.get(name)()
    declared = param_defaults(recipe.config_type)
    config = build_config(recipe.config_type, {k: v for k, v in FAST.items() if k in declared},
                          f"recipe '{name}'")
    torch.manual_seed(0)
    model = mmbench.create_model("seed_concat", data.modalities, data.n_classes)
    report = recipe.fit(model, data, config, seed=seed)
    return model, report


@pytest.mark.parametrize("name", RECIPES.names())
def test_recipe_is_seeded_and_learns(name: str, synth: MultimodalDataset) -> None:
    if not RECIPES.get(name).trains:
        _keeps_the_weights(name, synth)
        return
    a, report = _fit(name, synth, seed=1)
    b, _ = _fit(name, synth, seed=1)
    c, _ = _fit(name, synth, seed=2)
    for key, value in a.state_dict().items():
        assert torch.equal(value, b.state_dict()[key]), key
    assert any(not torch.equal(v, c.state_dict()[k]) for k, v in a.state_dict().items())
    assert 1 <= report.best_epoch <= report.epochs_run <= FAST["epochs"]
    assert report.best_val_accuracy == pytest.approx(split_accuracy(a, synth.val))
    assert split_accuracy(a, synth.test) > 1 / synth.n_classes + 0.15


def _keeps_the_weights(name: str, data: MultimodalDataset) -> None:
    """A recipe that does not train (``trains = False``) leaves every weight as built."""
    torch.manual_seed(0)
    before = mmbench.create_model("seed_concat", data.modalities, data.n_classes).state_dict()
    model, report = _fit(name, data, seed=1)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    assert report.epochs_run == 0 and report.best_val_accuracy == pytest.approx(split_accuracy(model, data.val))


def test_early_stopping_stops_and_keeps_the_best_epoch(synth: MultimodalDataset) -> None:
    recipe = RECIPES.get("standard")()
    config = build_config(recipe.config_type, {"epochs": 60, "patience": 2, "lr": 0.05}, "r")
    torch.manual_seed(0)
    model = mmbench.create_model("early_fusion", synth.modalities, synth.n_classes)
    report = recipe.fit(model, synth, config, seed=0)
    assert report.epochs_run - report.best_epoch == 2 and report.epochs_run < 60
    assert split_accuracy(model, synth.val) == pytest.approx(report.best_val_accuracy)


@pytest.mark.parametrize("params,match", [
    ({"epochs": 0}, "epochs >= 1"),
    ({"lr": "fast"}, "parameter 'lr' must be float or int, got str"),
    ({"epoch": 3}, "unknown parameter 'epoch' \\(did you mean 'epochs'\\?\\)"),
    ({"patience": True}, "'patience' must be int, got bool"),
])
def test_recipe_config_errors_are_one_line(params, match) -> None:
    with pytest.raises(MMBenchError, match=match) as info:
        build_config(RECIPES.get("standard").config_type, params, "recipe 'standard'")
    assert "\n" not in str(info.value)
