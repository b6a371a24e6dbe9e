"""The audit helpers: mmbench.load_model gives back the exact trained module a cell used and
mmbench.outcomes each evaluated row's outcome with its row id, so a cell recomputed by hand
with plain torch matches the stored one exactly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import tiny_suite, write_suite

import mmbench
from mmbench.data.synthetic import make_synthetic
from mmbench.execution.evaluate import eval_rows
from mmbench.models.late import LateFusion
from mmbench.registry import MODELS
from mmbench.runner import RunOptions, run_suite
from mmbench.testing.fitting import PlainNet

PLAIN = "audited_plain"
PERTURBATIONS = [
    "clean",
    {"name": "adversarial", "params": {"attacks": ["fgsm"], "eps": [0.05], "targets": ["img"], "max_rows": 10}},
    {"name": "shift", "params": {"corruptions": ["gaussian_noise"], "severities": [2], "targets": ["tab"],
                                 "draws": 2}},
]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A tiny run: a plain module and late_fusion, two seeds, clean, FGSM on 10 rows and a
    two-draw corruption."""
    root = tmp_path_factory.mktemp("audit")
    MODELS.register(PLAIN, PlainNet)
    try:
        suite = tiny_suite(models=["late_fusion", PLAIN], seeds=[0, 1], perturbations=PERTURBATIONS)
        result = run_suite(write_suite(root, suite), RunOptions(out_dir=root / "out", cache_dir=root / "cache",
                                                                 progress=False))
        yield root, result, make_synthetic(**suite["datasets"][0]["params"])
    finally:
        MODELS.unregister(PLAIN)


def load(root: Path, model: str, seed: int = 0) -> torch.nn.Module:
    return mmbench.load_model(root / "out", dataset="synthetic", model=model, seed=seed, cache_dir=root / "cache")


def test_a_clean_cell_recomputed_from_the_loaded_model_matches_exactly(run) -> None:
    root, _, data = run
    for name, kind in ((PLAIN, PlainNet), ("late_fusion", LateFusion)):
        model = load(root, name, seed=1)
        assert type(model) is kind and not model.training  # the user's own module, not the harness's wrapper
        rows = mmbench.outcomes(root / "out", model=name, seed=1, family="clean")
        assert list(rows["row"]) == list(range(len(data.test)))
        batch = {m: x[torch.tensor(rows["row"].to_numpy())] for m, x in data.test.inputs.items()}
        with torch.no_grad():
            logits = model(**batch) if name == PLAIN else model(batch)
        assert np.array_equal(logits.argmax(1).numpy(), rows["pred"].to_numpy())
        assert np.array_equal(data.test.labels.numpy(), rows["label"].to_numpy())
        true = logits.softmax(1).gather(1, data.test.labels.view(-1, 1)).view(-1)
        assert np.allclose(true.numpy(), rows["prob"].to_numpy(), atol=1e-6)


def test_outcomes_columns_row_ids_and_draws(run) -> None:
    root, result, data = run
    rows = mmbench.outcomes(root / "out")
    assert list(rows.columns[:10]) == ["suite", "dataset", "model", "recipe", "seed", "family", "perturbation",
                                       "target", "severity", "split"]
    assert {"attack", "corruption", "cell", "row", "draw", "pred", "label", "prob", "correct"} <= set(rows.columns)
    attacked = rows.query("family == 'adversarial'")
    subset = eval_rows(len(data.test), 10, torch.device("cpu")).numpy()
    for _, cell in attacked.groupby("cell"):
        assert np.array_equal(cell["row"].to_numpy(), subset)  # the seeded 10-row subset, in order
    shifted = rows.query("family == 'shift'")
    assert shifted.groupby("cell")["draw"].value_counts().unstack().eq(len(data.test)).all().all()
    by_hand = rows.groupby("cell")["correct"].mean()  # a draw's mean is the cell's accuracy, every draw alike
    stored = result.frame.query("metric == 'accuracy'").set_index("cell")["value"].reindex(by_hand.index)
    assert np.allclose(by_hand.to_numpy(), stored.to_numpy())


def test_outcomes_filters_narrow_the_cells(run) -> None:
    root, _, _ = run
    out = root / "out"
    one = mmbench.outcomes(out, model=PLAIN, seed=0, family="adversarial", attack="fgsm", target="img")
    assert one["cell"].nunique() == 1 and len(one) == 10
    both = mmbench.outcomes(out, model=["late_fusion", PLAIN], family="shift", severity=2)
    assert set(both["model"]) == {"late_fusion", PLAIN} and set(both["severity"]) == {2.0}
    assert both["cell"].nunique() == 4  # two models, two seeds
    assert set(mmbench.outcomes(out, seed=[1])["seed"]) == {1}


def test_outcomes_errors(run, tmp_path: Path) -> None:
    out = run[0] / "out"
    with pytest.raises(mmbench.MMBenchError, match="holds no mmbench store"):
        mmbench.outcomes(tmp_path)
    with pytest.raises(mmbench.MMBenchError, match="has model 'late_fusoin' \\(did you mean 'late_fusion'\\?\\)"
                                                   ".*there is one of late_fusion, audited_plain"):
        mmbench.outcomes(out, model="late_fusoin")
    with pytest.raises(mmbench.MMBenchError, match="unknown column 'atack' \\(did you mean 'attack'\\?\\)"):
        mmbench.outcomes(out, atack="fgsm")
    with pytest.raises(mmbench.MMBenchError, match="has target 'aud'.*there is one of img"):
        mmbench.outcomes(out, family="adversarial", target="aud")


def test_load_model_errors(run, tmp_path: Path) -> None:
    root = run[0]
    with pytest.raises(mmbench.MMBenchError, match="holds no mmbench store"):
        mmbench.load_model(tmp_path, dataset="synthetic", model="late_fusion")
    with pytest.raises(mmbench.MMBenchError, match="trained with seeds 0, 1 in .*; pass seed= one of them"):
        mmbench.load_model(root / "out", dataset="synthetic", model="late_fusion", cache_dir=root / "cache")
    with pytest.raises(mmbench.MMBenchError, match="no training cell of .* has model 'late'; model there is one "
                                                   "of late_fusion, audited_plain"):
        load(root, "late")
    with pytest.raises(mmbench.MMBenchError, match="has recipe 'adversarial'.*there is one of standard"):
        mmbench.load_model(root / "out", dataset="synthetic", model="late_fusion", recipe="adversarial", seed=0)
    with pytest.raises(mmbench.MMBenchError, match=f"is not in {tmp_path}; pass cache_dir="):
        mmbench.load_model(root / "out", dataset="synthetic", model="late_fusion", seed=0, cache_dir=tmp_path)
