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
from conftest import install_package, pyproject

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

PYPROJECT = pyproject("mmbench-demo-plugin", {
    "mmbench.models": {"demo_model": "demo_plugin.models:MultimodalModel",
                       "undeclared_model": "demo_plugin.models:Undeclared", "broken_fusion": "demo_plugin_missing:factory"},
    "mmbench.metrics": {"error_rate": "demo_plugin.metrics:ErrorRate"}}, ("demo_plugin",))


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory) -> Path:
    files = {"pyproject.toml": PYPROJECT, "demo_plugin/__init__.py": "", "demo_plugin/helpers.py": HELPERS,
             "demo_plugin/models.py": MODELS, "demo_plugin/metrics.py": METRICS}
    return install_package(tmp_path_factory.mktemp("plugin_src"), tmp_path_factory.mktemp("site"), files)


def run(site: Path, *args: str, cwd: Path = REPO, timeout: int = 600, **env: str) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "PYTHONPATH": str(site), "PYTHONDONTWRITEBYTECODE": "1", **env}
    return subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=full_env)


def mmbench(site: Path, *args: str, timeout: int = 600, **env: str) -> subprocess.CompletedProcess:
    return run(site, "-m", "mmbench", *args, timeout=timeout, **env)


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


BAD_PYPROJECT = pyproject("mmbench-bad-plugins", {
    "mmbench.models": {name: f"bad_plugins.{name}:factory"
                       for name in ("exits_zero", "exits_three", "interrupts", "generator_exit", "loops", "sleeps")}
    | {"good_model": "bad_plugins.good:GoodModel"},
    "mmbench.recipes": {"slow_recipe": "bad_plugins.sleeps:factory"}}, ("bad_plugins",))

GOOD = """
from torch import nn


class GoodModel(nn.Module):
    \"\"\"A plugin that loads.\"\"\"

    def __init__(self):
        super().__init__()
        self.net = nn.Linear(4, 2)

    def forward(self, x):
        return self.net(x)
"""

#: each plugin module's whole text: what it does when imported
BAD_MODULES = {
    "exits_zero": "raise SystemExit(0)\n",
    "exits_three": "import sys\nsys.exit(3)\n",
    # SEND_SIGINT: a real Ctrl-C while it imports (a signal to the process), not a raised exception
    "interrupts": ("import os, signal, time\nif os.environ.get('SEND_SIGINT'):\n"
                   "    os.kill(os.getpid(), signal.SIGINT)\n    time.sleep(30)\nraise KeyboardInterrupt\n"),
    "generator_exit": "raise GeneratorExit\n",
    "loops": "while True:\n    pass\n",
    "sleeps": "import time\ntime.sleep(1000)\n",
}


@pytest.fixture(scope="module")
def bad_plugin_site(tmp_path_factory) -> Path:
    """One distribution of plugins that exit, interrupt, loop or sleep at import beside one that
    loads, and a second distribution whose entry_points.txt is not UTF-8."""
    files = {"pyproject.toml": BAD_PYPROJECT, "bad_plugins/__init__.py": "", "bad_plugins/good.py": GOOD,
             **{f"bad_plugins/{name}.py": text for name, text in BAD_MODULES.items()}}
    site = install_package(tmp_path_factory.mktemp("bad_src"), tmp_path_factory.mktemp("bad_site"), files)
    unreadable = site / "unreadable_plugin-1.0.dist-info"
    unreadable.mkdir()
    (unreadable / "METADATA").write_text("Metadata-Version: 2.1\nName: unreadable-plugin\nVersion: 1.0\n")
    (unreadable / "entry_points.txt").write_bytes(b"[mmbench.models]\nnever = nowhere:x  # caf\xe9\n")
    return site


def _warnings(stderr: str, needle: str) -> list[str]:
    return [line for line in stderr.splitlines() if needle in line]


def test_plugins_that_exit_interrupt_or_hang_cannot_take_the_cli_down(bad_plugin_site: Path) -> None:
    out = mmbench(bad_plugin_site, "ls", "models", timeout=60, MMBENCH_PLUGIN_TIMEOUT="1")
    assert out.returncode == 0, out.stderr
    assert "late_fusion" in out.stdout and "good_model" in out.stdout  # built-ins and the good plugin
    assert "Traceback" not in out.stderr
    expected = {"exits_zero": "SystemExit: 0", "exits_three": "SystemExit: 3",
                "'interrupts'": "KeyboardInterrupt", "generator_exit": "GeneratorExit",
                "'loops'": "did not finish importing within 1 s; skipped",
                "'sleeps'": "did not finish importing within 1 s; skipped"}
    for name, reason in expected.items():
        lines = _warnings(out.stderr, name)
        assert len(lines) == 1 and reason in lines[0], out.stderr
        assert name.strip("'") not in out.stdout
    unreadable = _warnings(out.stderr, "unreadable-plugin")
    assert len(unreadable) == 1 and "UnicodeDecodeError" in unreadable[0]
    assert len(out.stderr.strip().splitlines()) == len(expected) + 1


def test_a_real_ctrl_c_while_a_plugin_imports_still_interrupts(bad_plugin_site: Path) -> None:
    out = mmbench(bad_plugin_site, "ls", "models", timeout=60, SEND_SIGINT="1")
    assert out.returncode == 130 and "interrupted" in out.stderr.splitlines()[-1]
    assert "skipping model plugin 'interrupts'" not in out.stderr and "Traceback" not in out.stderr


def test_the_no_plugins_flag_loads_none(bad_plugin_site: Path) -> None:
    out = mmbench(bad_plugin_site, "ls", "models", "--no-plugins", timeout=60)
    assert out.returncode == 0, out.stderr
    assert "late_fusion" in out.stdout and "good_model" not in out.stdout
    assert "plugin '" not in out.stderr  # nothing imported: no plugin warnings


def test_distributions_are_read_once_and_timers_are_put_back(bad_plugin_site: Path, monkeypatch,
                                                             caplog) -> None:
    """In-process: two registries read the distributions once (one warning for the unreadable
    one); a plugin's time limit leaves the SIGALRM handler, a running timer and SIGINT as found."""
    import signal

    from mmbench import plugins, registry

    monkeypatch.syspath_prepend(str(bad_plugin_site))
    monkeypatch.setattr(plugins, "_ENTRY_POINTS", None)
    monkeypatch.setattr(plugins, "_TIMED_OUT", set())
    monkeypatch.setenv("MMBENCH_PLUGIN_TIMEOUT", "0.5")
    monkeypatch.delenv("MMBENCH_NO_PLUGINS", raising=False)
    sentinel, sigint = (lambda signum, frame: None), signal.getsignal(signal.SIGINT)
    previous = signal.signal(signal.SIGALRM, sentinel)
    try:
        signal.setitimer(signal.ITIMER_REAL, 100)
        recipes = registry.Registry("recipe", (), "mmbench.recipes")
        metrics = registry.Registry("metric", (), "mmbench.metrics")
        assert recipes.names() == [] and metrics.names() == []
        remaining = signal.getitimer(signal.ITIMER_REAL)[0]
        assert signal.getsignal(signal.SIGALRM) is sentinel and 90 < remaining <= 100
        assert signal.getsignal(signal.SIGINT) is sigint
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    messages = [r.getMessage() for r in caplog.records]
    assert len([m for m in messages if "unreadable-plugin" in m]) == 1
    assert [m for m in messages if "slow_recipe" in m] == [
        "recipe plugin 'slow_recipe' (bad_plugins.sleeps:factory) did not finish importing within 0.5 s; "
        "skipped (MMBENCH_PLUGIN_TIMEOUT sets the limit)"]
