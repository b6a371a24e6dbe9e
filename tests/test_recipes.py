"""The built-in recipes' own behaviour (early stopping, config errors). (Every registered
recipe's contract: mmbench/testing/test_contract_recipes.py.)"""

from __future__ import annotations

import pytest
import torch

import mmbench
from mmbench.config.params import build_config
from mmbench.data.base import MultimodalDataset
from mmbench.errors import MMBenchError
from mmbench.registry import RECIPES
from mmbench.train.base import split_accuracy


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
