"""Every registered recipe trains a FusionModel and a plain nn.Module: seeded, learning (or,
for a recipe that does not train, leaving every weight as built)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import nn

import mmbench
from mmbench.config.params import build_config, param_defaults
from mmbench.data.base import MultimodalDataset
from mmbench.registry import RECIPES
from mmbench.testing.fitting import plain_model
from mmbench.train.base import split_accuracy

FAST = {"epochs": 3, "batch_size": 32}
MODELS: dict[str, Callable[[MultimodalDataset], nn.Module]] = {
    "fusion": lambda data: _seeded(lambda: mmbench.create_model("seed_concat", data.modalities, data.n_classes)),
    "plain": plain_model,
}


def _seeded(build: Callable[[], nn.Module]) -> nn.Module:
    torch.manual_seed(0)
    return build()


def _fit(name: str, kind: str, data: MultimodalDataset, seed: int):
    recipe = RECIPES.get(name)()
    declared = param_defaults(recipe.config_type)
    required = [k for k, v in declared.items() if v is ... and k not in FAST]
    if required:
        pytest.skip(f"recipe '{name}' has required parameters ({', '.join(required)}): give them "
                    "defaults in its config dataclass")
    config = build_config(recipe.config_type, {k: v for k, v in FAST.items() if k in declared},
                          f"recipe '{name}'")
    model = MODELS[kind](data)
    report = recipe.fit(model, data, config, seed=seed)
    return model, report


@pytest.mark.parametrize("kind", sorted(MODELS))
@pytest.mark.parametrize("name", RECIPES.names())
def test_recipe_is_seeded_and_learns(name: str, kind: str, synth: MultimodalDataset) -> None:
    if not RECIPES.get(name).trains:
        before = MODELS[kind](synth).state_dict()
        model, report = _fit(name, kind, synth, seed=1)
        assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
        assert report.epochs_run == 0
        assert report.best_val_accuracy == pytest.approx(split_accuracy(model, synth.val))
        return
    a, report = _fit(name, kind, synth, seed=1)
    b, _ = _fit(name, kind, synth, seed=1)
    c, _ = _fit(name, kind, synth, seed=2)
    for key, value in a.state_dict().items():
        assert torch.equal(value, b.state_dict()[key]), key
    assert any(not torch.equal(v, c.state_dict()[k]) for k, v in a.state_dict().items())
    assert 1 <= report.best_epoch <= report.epochs_run <= FAST["epochs"]
    assert report.best_val_accuracy == pytest.approx(split_accuracy(a, synth.val))
    assert split_accuracy(a, synth.test) > 1 / synth.n_classes + 0.15
