"""Untrusted input: pickles only with --trust-pickle, YAML safe-loaded, weights-only checkpoints."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch
from conftest import tiny_suite, write_suite

from mmbench.cli import main
from mmbench.data.pickles import load_pickle
from mmbench.data.synthetic import make_synthetic
from mmbench.errors import MMBenchError
from mmbench.registry import DATASETS


def test_load_pickle_needs_trust(tmp_path: Path) -> None:
    path = tmp_path / "data.pkl"
    path.write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(MMBenchError, match="refusing to load .*pass --trust-pickle"):
        load_pickle(path, trusted=False)
    assert load_pickle(path, trusted=True) == {"a": 1}


def test_trust_pickle_flag_reaches_dataset_loaders(tmp_path: Path, capsys) -> None:
    path = tmp_path / "data.pkl"
    path.write_bytes(pickle.dumps(make_synthetic(n_samples=60, n_classes=3)))
    DATASETS.register("pickled", lambda trust_pickle=False: load_pickle(path, trust_pickle))
    try:
        suite = write_suite(tmp_path, {**tiny_suite(models=["late_fusion"]), "datasets": ["pickled"]})
        assert main(["validate", str(suite)]) == 2
        assert "pass --trust-pickle" in capsys.readouterr().err
        assert main(["validate", str(suite), "--trust-pickle"]) == 0
        out = ["--out", str(tmp_path / "o"), "--cache-dir", str(tmp_path / "c"), "-q"]
        assert main(["run", str(suite), *out, "--trust-pickle"]) == 0
    finally:
        DATASETS.unregister("pickled")


def test_yaml_is_safe_loaded(tmp_path: Path, capsys) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.yaml"
    path.write_text(f"name: !!python/object/apply:os.system ['touch {marker}']\ndatasets: [mfeat]\n"
                    "models: [late_fusion]\n")
    assert main(["validate", str(path)]) == 2
    assert "malformed YAML" in capsys.readouterr().err and not marker.exists()


def test_checkpoints_load_weights_only(tmp_path: Path) -> None:
    from mmbench.train.cache import CheckpointCache

    cache = CheckpointCache(tmp_path)

    class Evil:
        def __reduce__(self):
            return (print, ("unpickled code ran",))

    torch.save({"state_dict": {}, "meta": Evil()}, cache.path("k"))
    assert cache.load("k", torch.nn.Linear(2, 2)) is None  # refused and logged, not executed
