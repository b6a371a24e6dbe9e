"""The Ray executor on a local instance (2 CPUs) gives the same table as the local executor."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import tiny_suite, write_suite

from mmbench.errors import MMBenchError
from mmbench.runner import RunOptions, run_suite


def test_ray_and_local_give_identical_tables(tmp_path: Path) -> None:
    suite = tiny_suite(models=["late_fusion", "seed_concat", "gated_fusion"], seeds=[0, 1],
                       perturbations=["clean", {"name": "missing", "params": {"subsets": "all"}},
                                      {"name": "shift", "params": {"corruptions": ["gaussian_noise"],
                                                                   "severities": [3]}}])
    path = write_suite(tmp_path, suite)
    local = run_suite(path, RunOptions(out_dir=tmp_path / "local", cache_dir=tmp_path / "c1", progress=False))
    distributed = run_suite(path, RunOptions(out_dir=tmp_path / "ray", cache_dir=tmp_path / "c2",
                                             progress=False, executor="ray", workers=2))
    assert distributed.models_trained == 6 and not distributed.failed
    assert (tmp_path / "local" / "results.csv").read_bytes() == (tmp_path / "ray" / "results.csv").read_bytes()
    again = run_suite(path, RunOptions(out_dir=tmp_path / "ray", cache_dir=tmp_path / "c2",
                                       progress=False, executor="ray", workers=2))
    assert again.models_trained == 0 and again.frame.equals(local.frame)  # resumed from the store


def test_bad_worker_count(tmp_path: Path) -> None:
    path = write_suite(tmp_path, tiny_suite())
    with pytest.raises(MMBenchError, match="--workers must be at least 1"):
        run_suite(path, RunOptions(out_dir=tmp_path / "o", executor="ray", workers=0))
