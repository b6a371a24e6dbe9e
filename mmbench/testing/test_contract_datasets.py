"""Every registered dataset loads and honours the data contract. Datasets that read
user-supplied files register a ``fixture`` writer (registry metadata): its small files in the real
format are what gets loaded here."""

from __future__ import annotations

from pathlib import Path

import pytest

import mmbench
from mmbench.config.params import DATASET_HARNESS_ARGS, param_defaults
from mmbench.registry import DATASETS


@pytest.mark.parametrize("name", DATASETS.names())
def test_every_registered_dataset_honours_the_contract(name: str, tmp_path: Path) -> None:
    """Datasets that read user-supplied files register a ``fixture`` writer: its small files
    in the real format are what gets loaded here."""
    fixture = DATASETS.entry(name).meta.get("fixture")
    required = [k for k, v in param_defaults(DATASETS.get(name), DATASET_HARNESS_ARGS).items() if v is ...]
    if fixture is None and required:
        pytest.skip(f"dataset '{name}' needs {', '.join(required)} to load: register it with "
                    "fixture=write_fixture, a function write_fixture(root) -> loader params that "
                    "writes small files in its format under root")
    data = mmbench.load_dataset(name, **(fixture(tmp_path) if fixture else {}))
    assert data.n_classes >= 2 and data.modalities
    for split in (data.train, data.val, data.test):
        assert len(split) > 0
        assert int(split.labels.max()) < data.n_classes and int(split.labels.min()) >= 0
        for spec in data.modalities:
            x = split.inputs[spec.name]
            assert tuple(x.shape[1:]) == spec.shape
            assert float(x.min()) >= spec.lo and float(x.max()) <= spec.hi
            assert x.is_floating_point() == spec.is_continuous
    names = [m.name for m in data.modalities]
    assert len(set(names)) == len(names) and data.fingerprint() == data.fingerprint()

