"""The results store: resuming after SIGKILL, failing cells, --force, status, NaN handling."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
from conftest import tiny_suite, write_suite
from torch import nn

from mmbench.cli import main
from mmbench.errors import MMBenchError
from mmbench.models.late import LateFusion
from mmbench.registry import DATASETS, MODELS
from mmbench.runner import RunOptions, run_suite
from mmbench.store.database import FILENAME, Store

REPO = Path(__file__).resolve().parents[1]


def _many_cells() -> dict:
    """About 40 cells of a few hundred milliseconds each."""
    return tiny_suite(models=["late_fusion", "seed_concat", "gated_fusion"], seeds=[0, 1],
                      perturbations=["clean", {"name": "shift", "params": {
                          "corruptions": ["gaussian_noise", "token_typo"], "severities": [2, 4]}}])


def _done_cells(store: Path) -> int:
    if not store.is_file():
        return 0
    try:
        with sqlite3.connect(store, timeout=5) as db:
            return db.execute("SELECT COUNT(*) FROM cells WHERE status = 'done'").fetchone()[0]
    except sqlite3.OperationalError:  # not created yet
        return 0


def _run_cli(path: Path, out: Path, cache: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "mmbench", "run", str(path), "--out", str(out),
                             "--cache-dir", str(cache), "-q"], cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)


def _kill_after(path: Path, out: Path, cache: Path, cells: int) -> None:
    proc = _run_cli(path, out, cache)
    deadline = time.monotonic() + 240
    while _done_cells(out / FILENAME) < cells and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)


def test_sigkill_then_resume_gives_the_uninterrupted_table(tmp_path: Path) -> None:
    path = write_suite(tmp_path, _many_cells())
    reference = run_suite(path, RunOptions(out_dir=tmp_path / "ref", cache_dir=tmp_path / "ref_c",
                                           progress=False))
    out, cache = tmp_path / "o", tmp_path / "c"
    for after in (1, 7, 20):  # killed while training, between cells, later on
        _kill_after(path, out, cache, after)
    assert 1 <= _done_cells(out / FILENAME) < 46
    proc = _run_cli(path, out, cache)
    assert proc.wait(timeout=300) == 0, proc.stderr.read() if proc.stderr else ""
    resumed = pd.read_csv(out / "results.csv")
    assert not resumed.duplicated(["model", "seed", "perturbation", "target", "severity", "metric"]).any()
    assert (out / "results.csv").read_bytes() == (tmp_path / "ref" / "results.csv").read_bytes()
    assert len(resumed) == len(reference.frame)


def test_a_failing_cell_is_recorded_and_the_others_finish(tmp_path: Path) -> None:
    class NaNFusion(LateFusion):
        """Late fusion whose logits are all NaN."""

        def fuse_and_classify(self, features):
            logits = super().fuse_and_classify(features)
            # NaN only once trained (evaluation mode): the probe before training passes
            return logits * float("nan") if self.poisoned and not self.training else logits

    MODELS.register("nan_fusion", lambda modalities, n_classes: _poisoned(NaNFusion(modalities, n_classes, 16, 32)))
    try:
        path = write_suite(tmp_path, tiny_suite(models=["late_fusion", "nan_fusion"]))
        opts = RunOptions(out_dir=tmp_path / "o", cache_dir=tmp_path / "c", progress=False)
        result = run_suite(path, opts)
        assert [f.name for f in result.failed] == ["synthetic/nan_fusion/standard/seed0/clean/all/0"]
        assert "NaN/Inf logits" in result.failed[0].error
        assert set(result.frame["model"]) == {"late_fusion"}  # the others are all there
        with pytest.raises(ArithmeticError, match="NaN/Inf logits"):
            run_suite(path, RunOptions(out_dir=tmp_path / "o2", cache_dir=tmp_path / "c",
                                       progress=False, fail_fast=True))
    finally:
        MODELS.unregister("nan_fusion")


def _poisoned(model: nn.Module) -> nn.Module:
    model.poisoned = True
    return model


def test_status_and_exit_code_of_a_run_with_a_failed_cell(tmp_path: Path, capsys) -> None:
    MODELS.register("nan_fusion2", lambda modalities, n_classes: _nan_model(modalities, n_classes))
    try:
        path = write_suite(tmp_path, tiny_suite(models=["late_fusion", "nan_fusion2"]))
        code = main(["run", str(path), "--out", str(tmp_path / "o"), "--cache-dir", str(tmp_path / "c"), "-q"])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 1 and err[-1].startswith("mmbench: error: 1 cells failed")
        assert "mmbench status" in err[-1]
        assert main(["status", str(tmp_path / "o")]) == 0
        out = capsys.readouterr().out
        assert "4 cells: 3 done, 0 pending, 1 failed" in out and "NaN/Inf logits" in out
    finally:
        MODELS.unregister("nan_fusion2")


def _nan_model(modalities, n_classes) -> nn.Module:
    class Constant(LateFusion):
        def fuse_and_classify(self, features):
            logits = super().fuse_and_classify(features)
            return logits if self.training else logits * float("inf") * 0

    return Constant(modalities, n_classes, 16, 32)


def test_force_recomputes_and_retrains(tmp_path: Path) -> None:
    path = write_suite(tmp_path, tiny_suite(models=["late_fusion"]))
    opts = RunOptions(out_dir=tmp_path / "o", cache_dir=tmp_path / "c", progress=False)
    first = run_suite(path, opts)
    assert run_suite(path, opts).models_trained == 0
    forced = run_suite(path, RunOptions(out_dir=tmp_path / "o", cache_dir=tmp_path / "c",
                                        progress=False, force=True))
    assert forced.models_trained == 1
    pd.testing.assert_frame_equal(forced.frame, first.frame)


def test_status_of_a_folder_without_a_store_is_one_line(tmp_path: Path, capsys) -> None:
    assert main(["status", str(tmp_path)]) == 2
    assert "holds no mmbench store" in capsys.readouterr().err


def test_bad_input_leaves_an_existing_store_intact(tmp_path: Path) -> None:
    path = write_suite(tmp_path, tiny_suite(models=["late_fusion"]))
    run_suite(path, RunOptions(out_dir=tmp_path / "o", cache_dir=tmp_path / "c", progress=False))
    before = (tmp_path / "o" / FILENAME).read_bytes()
    bad = write_suite(tmp_path, {**tiny_suite(models=["late_fusion"]), "seeds": [-1]}, "bad.yaml")
    assert main(["run", str(bad), "--out", str(tmp_path / "o"), "--cache-dir", str(tmp_path / "c")]) == 2
    store = Store(tmp_path / "o")
    try:
        assert [s.status for s in store.statuses()] == ["done", "done"]
    finally:
        store.close()
    assert (tmp_path / "o" / FILENAME).read_bytes() == before


def test_nan_in_the_data_is_a_one_line_error(tmp_path: Path) -> None:
    from mmbench.data.synthetic import make_synthetic

    def broken(**_):
        data = make_synthetic(n_samples=60, n_classes=3)
        data.test.inputs["table"][0, 0] = float("nan")
        return data

    DATASETS.register("broken_data", broken)
    try:
        suite = {**tiny_suite(models=["late_fusion"]), "datasets": ["broken_data"]}
        with pytest.raises(MMBenchError, match="dataset 'broken_data': 1 NaN/Inf values in modality 'table' of the test split"):
            run_suite(write_suite(tmp_path, suite), RunOptions(out_dir=tmp_path / "o", progress=False))
        assert not (tmp_path / "o").exists()
    finally:
        DATASETS.unregister("broken_data")


def test_threads_setting_is_restored(tmp_path: Path) -> None:
    before = torch.get_num_threads()
    path = write_suite(tmp_path, tiny_suite(models=["late_fusion"]))
    run_suite(path, RunOptions(out_dir=tmp_path / "o", cache_dir=tmp_path / "c", progress=False, threads=1))
    assert torch.get_num_threads() == before


def test_report_rerenders_identical_files_from_the_store(tmp_path: Path, capsys) -> None:
    path = write_suite(tmp_path, _many_cells())
    out = tmp_path / "o"
    summary = tmp_path / "summary.md"
    assert main(["run", str(path), "--out", str(out), "--cache-dir", str(tmp_path / "c"), "-q",
                 "--summary", str(summary)]) == 0
    printed = capsys.readouterr().out
    assert "main board" in printed and str(out / "LEADERBOARD.md") in printed
    names = ("LEADERBOARD.md", "results.csv", "scores.csv", "corruptions.csv")
    before = {n: (out / n).read_bytes() for n in names}
    for n in names:
        (out / n).unlink()
    assert main(["report", str(out), "-q", "--summary", str(summary)]) == 0
    assert capsys.readouterr().out == printed  # the same short summary, from the store alone
    assert {n: (out / n).read_bytes() for n in names} == before
    assert summary.read_text().count("# Leaderboard: tiny") == 2  # appended by run and by report


def test_compare_gives_paired_differences(tmp_path: Path, capsys) -> None:
    """Two runs differing only in training epochs: same rows, paired intervals; a run against
    itself has zero differences with zero-width intervals."""
    base = tiny_suite(models=["late_fusion", "seed_concat"])
    short = {**base, "recipes": [{"name": "standard", "params": {"epochs": 1, "batch_size": 32}}]}
    for name, suite in (("long", base), ("short", short)):
        run_suite(write_suite(tmp_path, suite, f"{name}.yaml"),
                  RunOptions(out_dir=tmp_path / name, cache_dir=tmp_path / "c", progress=False))
    from mmbench.report.compare import compare

    table = compare(tmp_path / "long", tmp_path / "long").table.set_index(["model", "score"])
    assert (table["diff"] == 0).all() and (table["ci_low"] == 0).all() and (table["ci_high"] == 0).all()
    assert main(["compare", str(tmp_path / "long"), str(tmp_path / "short")]) == 0
    out = capsys.readouterr().out
    assert "paired differences" in out and "clean_accuracy" in out and "seed_concat" in out
    other = {**base, "datasets": [{**base["datasets"][0], "params": {**base["datasets"][0]["params"], "seed": 9}}]}
    run_suite(write_suite(tmp_path, other, "other.yaml"),
              RunOptions(out_dir=tmp_path / "other", cache_dir=tmp_path / "c", progress=False))
    assert main(["compare", str(tmp_path / "long"), str(tmp_path / "other")]) == 2
    assert "evaluated different" in capsys.readouterr().err


def test_compare_says_what_differs_between_runs(tmp_path: Path, capsys) -> None:
    """Runs with other training seeds: no stars (the intervals do not cover seed variation);
    runs with other baselines: the scores against the baseline are left out; both say why."""
    from mmbench.report.compare import compare, render

    shift = {"name": "shift", "params": {"corruptions": ["gaussian_noise"], "severities": [2], "draws": 1}}
    base = tiny_suite(models=["late_fusion", "seed_concat"], perturbations=["clean", shift], baseline="late_fusion")
    runs = {"a": base, "seeds": {**base, "seeds": [1]}, "baseline": {**base, "baseline": "seed_concat"}}
    for name, suite in runs.items():
        run_suite(write_suite(tmp_path, suite, f"{name}.yaml"),
                  RunOptions(out_dir=tmp_path / name, cache_dir=tmp_path / "c", progress=False))
    seeds = compare(tmp_path / "a", tmp_path / "seeds")
    assert not seeds.starred and "Training seeds differ (A: [0], B: [1])" in seeds.notes[0]
    text = render(seeds, tmp_path / "a", tmp_path / "seeds")
    assert " *" not in text and "(* excludes 0)" not in text and "Training seeds differ" in text
    baseline = compare(tmp_path / "a", tmp_path / "baseline")
    assert baseline.starred and "Baselines differ (A: late_fusion, B: seed_concat)" in baseline.notes[0]
    assert not set(baseline.table["score"]) & {"mce", "relative_mce", "effective_robustness"}
    assert {"clean_accuracy", "shift_mean_accuracy"} <= set(baseline.table["score"])
