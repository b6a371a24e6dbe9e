"""Third-party plugins, installed for real (pip into a temporary folder): a plain nn.Module
registered through an entry point with no adapter, a FusionModel, a metric, a broken entry;
the user's arrays from an .npz; contract tests on the installed plugin; and no stale results
when a helper module or the metric is edited."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import install_package

from mmbench.testing.attacks import case_id, representative

REPO = Path(__file__).resolve().parents[1]

HELPERS = '''
from torch import nn


def activation() -> nn.Module:
    return nn.ReLU()
'''

MODELS = '''
import torch
from torch import nn

from demo_plugin.helpers import activation


class MultimodalModel(nn.Module):
    """A model written the usual way: one keyword input per modality."""

    mmbench_meta = {"modalities": {"vision": {"kind": "image", "shape": [1, 8, 8]},
                                   "audio": {"kind": "sequence", "shape": [2, 16]},
                                   "text": {"kind": "vector", "shape": [12]}}}

    def __init__(self, n_classes: int = 3, hidden: int = 16):
        super().__init__()
        self.vision = nn.Sequential(nn.Flatten(), nn.Linear(64, hidden), activation())
        self.audio = nn.Sequential(nn.Flatten(), nn.Linear(32, hidden), activation())
        self.text = nn.Sequential(nn.Linear(12, hidden), activation())
        self.head = nn.Linear(3 * hidden, n_classes)

    def forward(self, vision, audio, text):
        return self.head(torch.cat([self.vision(vision), self.audio(audio), self.text(text)], dim=1))


class Undeclared(nn.Module):
    """Fixed input sizes and nothing declared: the contract tests cannot guess its inputs."""

    def __init__(self):
        super().__init__()
        self.net = nn.Linear(37, 3)

    def forward(self, signal):
        return self.net(signal)
'''

METRICS = '''
from mmbench.metrics.base import RowMetric


class ErrorRate(RowMetric):
    higher_is_better = False

    def row_values(self, outcomes):
        return outcomes.preds != outcomes.labels
'''

PYPROJECT = '''
[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "mmbench-demo-plugin"
version = "0.0.1"

[tool.setuptools]
packages = ["demo_plugin"]

[project.entry-points."mmbench.models"]
demo_model = "demo_plugin.models:MultimodalModel"
undeclared_model = "demo_plugin.models:Undeclared"
broken_fusion = "demo_plugin_missing:factory"

[project.entry-points."mmbench.metrics"]
error_rate = "demo_plugin.metrics:ErrorRate"
'''


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory) -> Path:
    files = {"pyproject.toml": PYPROJECT, "demo_plugin/__init__.py": "", "demo_plugin/helpers.py": HELPERS,
             "demo_plugin/models.py": MODELS, "demo_plugin/metrics.py": METRICS}
    return install_package(tmp_path_factory.mktemp("plugin_src"), tmp_path_factory.mktemp("site"), files)


def run(site: Path, *args: str, cwd: Path = REPO, **env: str) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "PYTHONPATH": str(site), "PYTHONDONTWRITEBYTECODE": "1", **env}
    return subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=600, env=full_env)


def mmbench(site: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    return run(site, "-m", "mmbench", *args, **env)


def write_arrays(folder: Path, n: int = 240, seed: int = 0) -> Path:
    """The user's own data: three modalities whose class signal is real but noisy."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, n)
    shift = labels.astype(np.float32)
    np.savez(folder / "mydata.npz",
             vision=(rng.normal(size=(n, 1, 8, 8)) + 1.5 * shift[:, None, None, None]).astype(np.float32),
             audio=(rng.normal(size=(n, 2, 16)) + 1.0 * shift[:, None, None]).astype(np.float32),
             text=(rng.normal(size=(n, 12)) + 1.0 * shift[:, None]).astype(np.float32),
             labels=labels)
    return folder / "mydata.npz"


SUITE = {
    "name": "byo",
    "datasets": [{"name": "arrays", "params": {"path": "mydata.npz",
                                               "modalities": {"vision": "image", "audio": "sequence",
                                                              "text": "vector"}}}],
    "models": ["demo_model", "late_fusion"],
    "recipes": [{"name": "standard", "params": {"epochs": 40, "batch_size": 32, "lr": 0.005}}],
    "perturbations": [
        "clean",
        {"name": "adversarial", "params": {"attacks": ["fgsm", "pgd"], "eps": [0.05],
                                           "options": {"pgd": {"steps": 3}}}},
        {"name": "missing", "params": {"imputation": ["zeros", "mean", "noise"]}},
        {"name": "random_dropout", "params": {"rates": [0.3]}},
        {"name": "shift", "params": {"corruptions": ["gaussian_noise"], "severities": [2]}},
    ],
    "metrics": ["error_rate", "accuracy"],
}


@pytest.fixture(scope="module")
def first_run(plugin_site: Path, tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("byo")
    write_arrays(folder)
    suite = folder / "byo.yaml"
    suite.write_text(yaml.safe_dump(SUITE, sort_keys=False))
    args = (str(suite), "--out", str(folder / "out"), "--cache-dir", str(folder / "cache"))
    out = mmbench(plugin_site, "run", *args)
    return {"folder": folder, "args": args, "out": out}


def test_plugin_models_are_listed_and_broken_one_reported(plugin_site: Path) -> None:
    out = mmbench(plugin_site, "ls", "models")
    assert out.returncode == 0, out.stderr
    assert "demo_model" in out.stdout and "plugin demo_plugin.models:MultimodalModel" in out.stdout
    assert "late_fusion" in out.stdout  # built-ins keep working
    warnings = [line for line in out.stderr.splitlines() if "broken_fusion" in line]
    assert len(warnings) == 1 and "ModuleNotFoundError" in warnings[0]
    assert "Traceback" not in out.stderr


def test_a_plain_module_runs_every_family_on_the_users_arrays(first_run: dict) -> None:
    out = first_run["out"]
    assert out.returncode == 0, out.stderr
    frame = pd.read_csv(first_run["folder"] / "out" / "results.csv")
    mine = frame[frame["model"] == "demo_model"]
    assert set(mine["family"]) == {"clean", "adversarial", "missing", "random_dropout", "shift", "subset_vote"}
    attacked = set(mine.loc[mine["family"] == "adversarial", "target"])
    assert attacked == {"vision", "audio", "text", "all"}
    assert {"missing-zeros", "missing-mean", "missing-noise", "random-zeros"} <= set(mine["perturbation"])
    clean = mine[(mine["family"] == "clean") & (mine["metric"] == "accuracy")]["value"].iloc[0]
    assert clean > 0.6  # it learned the user's data


def test_a_plugin_metric_listed_first_ranks_the_boards_and_has_intervals(first_run: dict) -> None:
    frame = pd.read_csv(first_run["folder"] / "out" / "results.csv")
    errors = frame[frame["metric"] == "error_rate"]
    assert len(errors) == len(frame) / 2 and errors[["ci_low", "ci_high"]].notna().all().all()
    assert ((errors["ci_low"] <= errors["value"]) & (errors["value"] <= errors["ci_high"])).all()
    document = (first_run["folder"] / "out" / "LEADERBOARD.md").read_text()
    board = document.split("(clean, test split)")[1].split("##")[0]
    header, _, *rows = [line for line in board.splitlines() if line.startswith("|")]
    assert header.split("|")[4].strip() == "error_rate"
    models = [r for r in rows if r.split("|")[3].strip() != "baseline"]  # the trivial baselines come last
    ranked = [float(r.split("|")[4].split("±")[0]) for r in models]
    assert ranked == sorted(ranked) and len(ranked) == 2  # lower is better: best first
    assert len(rows) == len(models) + 2


def test_contract_tests_pass_on_the_installed_plugin(plugin_site: Path, tmp_path: Path) -> None:
    out = run(plugin_site, "-m", "pytest", "--pyargs", "mmbench.testing", "-q", "-p", "no:cacheprovider",
              "-k", "demo_model or error_rate or undeclared_model", "-rA", cwd=tmp_path, MMBENCH_CONTRACT_ATTACKS="")
    assert out.returncode == 0, out.stdout[-3000:]
    summary = out.stdout.strip().splitlines()[-1]
    assert "failed" not in summary and int(summary.split(" passed")[0].split()[-1]) >= 15
    skipped = [line for line in out.stdout.splitlines() if line.startswith("SKIPPED") and "undeclared_model" in line]
    assert skipped and all("declare its inputs in the registry metadata" in line for line in skipped)
    attacked = re.findall(r"^PASSED .*test_attacks_keep_the_invariants\[demo_model-(.+)\]$", out.stdout, re.M)
    assert attacked == [case_id(case) for case in representative()]  # one attack per mode and norm


def test_editing_a_helper_retrains_exactly_its_models(plugin_site: Path, first_run: dict) -> None:
    folder, args = first_run["folder"], first_run["args"]
    published = (folder / "out" / "results.json").read_bytes()
    again = mmbench(plugin_site, "run", *args)
    assert again.returncode == 0 and "0 cells to run" in again.stderr
    assert "nothing changed since the last publish: kept the files" in again.stderr
    assert (folder / "out" / "results.json").read_bytes() == published
    helpers = plugin_site / "demo_plugin" / "helpers.py"
    helpers.write_text(helpers.read_text().replace("nn.ReLU()", "nn.Tanh()"))
    edited = mmbench(plugin_site, "run", *args)
    assert edited.returncode == 0, edited.stderr
    assert "trained 1 models (1 code changed: demo_plugin.helpers)" in edited.stderr
    doc = json.loads((folder / "out" / "results.json").read_text())
    assert doc["models_trained"] == 1 and [t["cell"].split("/")[1] for t in doc["training"]] == ["demo_model"]
    planned = re.search(r"(\d+) models, (\d+) evaluations, (\d+) cells to run", edited.stderr)
    assert planned and int(planned[3]) == (int(planned[1]) + int(planned[2])) // 2  # demo_model's only
    assert doc["training"][0]["reason"] == "code changed: demo_plugin.helpers"


def test_editing_a_metric_recomputes_exactly_its_rows(plugin_site: Path, first_run: dict) -> None:
    folder, args = first_run["folder"], first_run["args"]
    before = pd.read_csv(folder / "out" / "results.csv")
    metrics = plugin_site / "demo_plugin" / "metrics.py"
    metrics.write_text(metrics.read_text().replace("outcomes.preds != outcomes.labels",
                                                   "(outcomes.preds != outcomes.labels) * 2.0"))
    out = mmbench(plugin_site, "run", *args)
    assert out.returncode == 0, out.stderr
    assert "0 cells to run" in out.stderr
    assert json.loads((folder / "out" / "results.json").read_text())["models_trained"] == 0
    after = pd.read_csv(folder / "out" / "results.csv")
    rows = int((after["metric"] == "error_rate").sum())
    assert f"metric 'error_rate' changed since the last publish: its {rows} rows recomputed" in out.stderr
    assert "metric 'accuracy'" not in out.stderr
    key = ["model", "family", "perturbation", "target", "severity", "metric"]
    joined = before.merge(after, on=key, suffixes=("_b", "_a"))
    acc, err = joined[joined["metric"] == "accuracy"], joined[joined["metric"] == "error_rate"]
    assert (acc["value_b"] == acc["value_a"]).all()
    assert np.allclose(err["value_a"], 2 * err["value_b"])


def test_autoload_can_be_turned_off(plugin_site: Path) -> None:
    out = mmbench(plugin_site, "ls", "models", MMBENCH_NO_PLUGINS="1")
    assert out.returncode == 0
    assert "demo_model" not in out.stdout and "broken_fusion" not in out.stderr
