"""MultiBench's file formats, on small fixtures written in exactly those formats: AV-MNIST
(.npy folders) and the affect pickles (MOSI / MOSEI / sarcasm / humor)."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import write_suite

from mmbench.cli import main
from mmbench.data.affect import classes
from mmbench.errors import MMBenchError
from mmbench.registry import DATASETS


def write_avmnist(root: Path) -> Path:
    from mmbench.data.avmnist import write_fixture

    return Path(write_fixture(root)["data_dir"])


def write_affect(root: Path, name: str = "mosi_raw.pkl") -> Path:
    from mmbench.data.affect import FILES, write_fixture

    dataset = next(k for k, v in FILES.items() if v == name)
    return Path(write_fixture(root, dataset)["path"])


def test_avmnist_shapes_scaling_and_validation_rows(tmp_path: Path) -> None:
    write_avmnist(tmp_path)
    data = DATASETS.get("avmnist")(data_dir=str(tmp_path / "avmnist"), val_rows=10)
    assert [(m.name, m.shape) for m in data.modalities] == [("image", (1, 28, 28)), ("audio", (1, 112, 112))]
    assert (len(data.train), len(data.val), len(data.test)) == (50, 10, 20)
    raw = np.load(tmp_path / "avmnist" / "image" / "train_data.npy")
    assert torch.allclose(data.val.inputs["image"][0].reshape(-1), torch.from_numpy(raw[50] / 255.0).float())
    assert data.val.labels.tolist() == (np.arange(60) % 10)[50:].tolist()  # the last rows
    assert float(data.train.inputs["audio"].max()) <= 1.0


def test_avmnist_from_the_data_root_and_missing_files(tmp_path: Path, monkeypatch) -> None:
    write_avmnist(tmp_path)
    loader = DATASETS.get("avmnist")
    assert len(loader(val_rows=10, data_root=str(tmp_path)).test) == 20
    monkeypatch.setenv("MMBENCH_DATA", str(tmp_path))
    assert len(loader(val_rows=10).test) == 20
    monkeypatch.delenv("MMBENCH_DATA")
    with pytest.raises(MMBenchError, match="no data location; give data_dir in the suite, --data-dir ROOT"):
        loader()
    (tmp_path / "avmnist" / "test_labels.npy").unlink()
    with pytest.raises(MMBenchError, match="test_labels.npy not found; AV-MNIST comes with MultiBench"):
        loader(data_dir=str(tmp_path / "avmnist"), val_rows=10)


def test_affect_pickle_format(tmp_path: Path) -> None:
    path = write_affect(tmp_path)
    data = DATASETS.get("mosi")(path=str(path), trust_pickle=True)
    assert [(m.name, m.shape) for m in data.modalities] == [("vision", (35, 50)), ("audio", (74, 50)),
                                                             ("text", (300, 50))]
    assert (len(data.train), len(data.val), len(data.test), data.n_classes) == (40, 12, 12, 2)
    raw = pickle.loads(path.read_bytes())
    assert data.train.labels.tolist() == (raw["train"]["labels"][:, 0] > 0).astype(int).tolist()
    audio = data.train.inputs["audio"]
    assert torch.isfinite(audio).all() and float(audio.min()) >= 0 and float(audio.max()) <= 1
    seven = DATASETS.get("mosi")(path=str(path), labels="7class", trust_pickle=True)
    assert seven.n_classes == 7 and set(seven.train.labels.tolist()) <= set(range(7))


def test_label_thresholds() -> None:
    y = np.array([[-3.4], [-0.2], [0.0], [0.1], [1.5], [2.6]])
    assert classes(y, "binary").tolist() == [0, 0, 0, 1, 1, 1]
    assert classes(y, "7class").tolist() == [0, 3, 3, 3, 5, 6]  # round half to even: 1.5 -> 2


def test_affect_needs_the_trust_flag(tmp_path: Path, capsys) -> None:
    write_affect(tmp_path, "sarcasm.pkl")
    suite = write_suite(tmp_path, {"datasets": ["sarcasm"], "models": ["late_fusion"]})
    assert main(["validate", str(suite), "--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "refusing to load" in err and "--trust-pickle" in err and len(err.strip().splitlines()) == 1
    assert main(["validate", str(suite), "--data-dir", str(tmp_path), "--trust-pickle"]) == 0


@pytest.fixture(scope="module")
def fixtures(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("formats")
    write_avmnist(root)
    write_affect(root, "mosei_raw.pkl")
    return {"avmnist": DATASETS.get("avmnist")(val_rows=10, data_root=str(root)),
            "mosei": DATASETS.get("mosei")(data_root=str(root), trust_pickle=True), "root": root}


@pytest.mark.parametrize("dataset", ["avmnist", "mosei"])
def test_all_three_families_run_on_the_formats(dataset: str, fixtures: dict, tmp_path: Path) -> None:
    from mmbench.runner import RunOptions, run_suite

    params = {"val_rows": 10} if dataset == "avmnist" else {}
    suite = {"name": dataset, "datasets": [{"name": dataset, "params": params}],
             "models": ["seed_concat", "late_fusion"],
             "recipes": [{"name": "standard", "params": {"epochs": 1, "batch_size": 16}}],
             "perturbations": ["clean",
                               {"name": "adversarial", "params": {"attacks": ["fgsm"], "eps": [0.05], "targets": ["all"]}},
                               {"name": "missing", "params": {"subsets": "all"}},
                               {"name": "shift", "params": {"corruptions": ["gaussian_noise"], "severities": [3]}}],
             "metrics": ["accuracy"]}
    result = run_suite(write_suite(tmp_path, suite), RunOptions(
        out_dir=tmp_path / "o", cache_dir=tmp_path / "c", progress=False, trust_pickle=True,
        data_root=str(fixtures["root"])))
    assert not result.failed
    assert {"clean", "adversarial", "missing", "shift"} <= set(result.frame["family"])
