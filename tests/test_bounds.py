"""Bounds before work (issue 22, point 5): tiny inputs with an unbounded cost are refused in one
line at planning (include graphs, alias bombs, grids of subsets, compound stages, smoothing
draws, threads, planned cells), and data files are read only when they are regular files whose
declared array sizes are within the limit."""

from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import tiny_suite, write_suite

from mmbench.cli import main


def cli(*args: str) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        code = main(list(args))
    return code, err.getvalue()


def refused(code_err: tuple[int, str], *needles: str) -> str:
    code, err = code_err
    lines = [line for line in err.strip().splitlines() if line.startswith("mmbench: error:")]
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def wide(m: int) -> dict[str, Any]:
    """Synthetic data with ``m`` small vector modalities."""
    mods = [{"name": f"m{i}", "kind": "vector", "shape": [2]} for i in range(m)]
    return {"name": "synthetic", "params": {"modalities": mods, "n_samples": 60, "n_classes": 2}}


def stage(eps: list[float]) -> dict[str, Any]:
    return {"name": "adversarial", "params": {"attacks": ["fgsm"], "eps": eps, "targets": ["all"]}}


GRIDS = [
    ({**tiny_suite(models=["late_fusion"]), "datasets": [wide(24)],
      "perturbations": [{"name": "missing", "params": {"subsets": "all"}}]}, "2^M kept sets"),
    (tiny_suite(models=["late_fusion"], perturbations=[{"name": "compound", "params": {
        "stages": [stage([i / 1000 + 0.001 for i in range(100)])] * 3}}]), "product of stages"),
    (tiny_suite(models=["late_fusion"], perturbations=[{"name": "smoothing", "params": {
        "sigma": [0.25], "n": 2 ** 70}}]), "smoothing: n"),
    (tiny_suite(models=["late_fusion"], perturbations=[{"name": "smoothing", "params": {
        "sigma": [0.25], "n0": 10 ** 9}}]), "smoothing: n0"),
    (tiny_suite(models=["late_fusion"], perturbations=[stage([i / 10 ** 5 + 1e-4 for i in range(20_000)])]),
     "attacks x eps x targets"),
]


@pytest.mark.parametrize("suite,needle", GRIDS, ids=["subsets", "compound", "n", "n0", "eps"])
def test_a_grid_past_its_limit_is_one_line_at_planning(suite: dict, needle: str, tmp_path: Path) -> None:
    line = refused(cli("validate", str(write_suite(tmp_path, suite))), needle, "more than the limit")
    assert not list(tmp_path.glob("results*"))
    assert len(line) < 300


def test_too_many_planned_cells_is_one_line(tmp_path: Path, monkeypatch) -> None:
    import mmbench.plan.cells as cells

    monkeypatch.setattr(cells, "MAX_CELLS", 5)
    suite = tiny_suite(perturbations=["clean", stage([0.1, 0.2, 0.3])])
    refused(cli("validate", str(write_suite(tmp_path, suite))), "evaluation cells", "limit of 5")


def test_threads_past_the_limit_are_refused_before_a_store_is_written(tmp_path: Path) -> None:
    suite = write_suite(tmp_path, tiny_suite(models=["late_fusion"]))
    refused(cli("run", str(suite), "--out", str(tmp_path / "o"), "--threads", "1000000"), "--threads")
    assert not (tmp_path / "o" / "store.sqlite").exists()


def test_an_include_graph_cannot_expand(tmp_path: Path) -> None:
    for i in range(31):
        (tmp_path / f"s{i}.yaml").write_text(f"include: [s{i + 1}.yaml, s{i + 1}.yaml, s{i + 1}.yaml]\n"
                                             if i < 30 else "name: deep\n")
    (tmp_path / "top.yaml").write_text("include: s0.yaml\ndatasets: [synthetic]\nmodels: [late_fusion]\n")
    refused(cli("validate", str(tmp_path / "top.yaml")), "read more than 64 files")


def test_an_alias_bomb_anywhere_is_refused(tmp_path: Path) -> None:
    lines = ["name: bomb", "datasets: [synthetic]", "models: [late_fusion]", "perturbations:",
             "  - name: adversarial", "    params:", "      attacks: [pgd]", "      eps: [0.1]",
             "      options:", "        pgd:", "          steps: 3", "          x0: &a0 [1, 1]"]
    lines += [f"          x{i}: &a{i} [*a{i - 1}, *a{i - 1}]" for i in range(1, 60)]
    (tmp_path / "bomb.yaml").write_text("\n".join(lines) + "\n")
    refused(cli("validate", str(tmp_path / "bomb.yaml")), "aliases expand to", "values")
    (tmp_path / "self.yaml").write_text("name: s\ndatasets: &d [synthetic, *d]\nmodels: [late_fusion]\n")
    refused(cli("validate", str(tmp_path / "self.yaml")), "contains itself")


def arrays_suite(folder: Path, path: Path) -> Path:
    dataset = {"name": "arrays", "params": {"path": str(path), "modalities": {"a": "vector", "b": "vector"}}}
    return write_suite(folder, {"name": "mine", "datasets": [dataset], "models": ["late_fusion"],
                                "recipes": [{"name": "standard", "params": {"epochs": 1}}]})


def test_a_fifo_is_refused_not_read(tmp_path: Path) -> None:
    fifo = tmp_path / "data.npz"
    os.mkfifo(fifo)
    refused(cli("validate", str(arrays_suite(tmp_path, fifo))), "not a regular file")
    folder = tmp_path / "npys"
    folder.mkdir()
    os.mkfifo(folder / "a.npy")
    np.save(folder / "b.npy", np.zeros((10, 2), np.float32))
    np.save(folder / "labels.npy", np.zeros(10, np.int64))
    refused(cli("validate", str(arrays_suite(tmp_path, folder))), "not a regular file")


def test_an_array_is_sized_from_its_header_before_it_is_inflated(tmp_path: Path, monkeypatch) -> None:
    rng = np.random.default_rng(0)
    arrays = {"a": np.zeros((4000, 64), np.float32), "b": rng.normal(size=(4000, 2)).astype(np.float32),
              "labels": rng.integers(0, 2, 4000)}
    np.savez_compressed(tmp_path / "zeros.npz", **arrays)
    assert (tmp_path / "zeros.npz").stat().st_size < 200_000  # ~1 MB of zeros compresses away
    monkeypatch.setenv("MMBENCH_MAX_ARRAY_BYTES", "500000")
    refused(cli("validate", str(arrays_suite(tmp_path, tmp_path / "zeros.npz"))), "'a'", "inflates to 1,024,128 bytes",
            "MMBENCH_MAX_ARRAY_BYTES")
    folder = tmp_path / "npys"
    folder.mkdir()
    for name, value in arrays.items():
        np.save(folder / f"{name}.npy", value)
    refused(cli("validate", str(arrays_suite(tmp_path, folder))), "declares 1,024,000 bytes")


def test_a_pipe_as_suite_or_summary_is_refused_not_waited_on(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    refused(cli("validate", str(fifo)), "not a regular file")
    suite = write_suite(tmp_path, tiny_suite(models=["late_fusion"]))
    refused(cli("run", str(suite), "--out", str(tmp_path / "o"), "--summary", str(fifo)), "a pipe that nobody reads")
    assert not (tmp_path / "o").exists()
