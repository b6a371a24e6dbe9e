"""Third-party plugins: a generated package is pip-installed into a temporary folder; its model
and metric appear through entry points; a broken plugin is one warning; autoload can be off."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import tiny_suite, write_suite

REPO = Path(__file__).resolve().parents[1]

PLUGIN_CODE = '''
from torch import nn
from mmbench.models.base import FusionModel
from mmbench.metrics.base import RowMetric


class MaxFusion(FusionModel):
    """Element-wise max over modality features."""

    def __init__(self, modalities, n_classes, dim):
        super().__init__(modalities, n_classes)
        self.build_encoders(dim, 32)
        self.head = nn.Linear(dim, n_classes)

    def fuse_and_classify(self, features):
        import torch
        return self.head(torch.stack(list(features.values())).amax(dim=0))


def max_fusion(modalities, n_classes, dim: int = 16):
    """A plugin model: max over modality features."""
    return MaxFusion(modalities, n_classes, dim)


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

[project.entry-points."mmbench.models"]
max_fusion = "demo_plugin:max_fusion"
broken_fusion = "demo_plugin_missing:factory"

[project.entry-points."mmbench.metrics"]
error_rate = "demo_plugin:ErrorRate"
'''


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory) -> Path:
    src = tmp_path_factory.mktemp("plugin_src")
    (src / "pyproject.toml").write_text(textwrap.dedent(PYPROJECT))
    (src / "demo_plugin.py").write_text(textwrap.dedent(PLUGIN_CODE))
    site = tmp_path_factory.mktemp("site")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--no-index", "--target", str(site), str(src)],
        check=True, capture_output=True, timeout=300,
    )
    assert list(site.glob("mmbench_demo_plugin-*.dist-info"))
    return site


def mmbench(site: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "PYTHONPATH": str(site), **env}
    return subprocess.run([sys.executable, "-m", "mmbench", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=300, env=full_env)


def test_plugin_model_is_listed_and_broken_one_reported(plugin_site: Path) -> None:
    out = mmbench(plugin_site, "ls", "models")
    assert out.returncode == 0, out.stderr
    assert "max_fusion" in out.stdout and "plugin demo_plugin:max_fusion" in out.stdout
    assert "late_fusion" in out.stdout  # built-ins keep working
    warnings = [line for line in out.stderr.splitlines() if "broken_fusion" in line]
    assert len(warnings) == 1 and "ModuleNotFoundError" in warnings[0]
    assert "Traceback" not in out.stderr


def test_plugin_model_and_metric_run_in_a_suite(plugin_site: Path, tmp_path: Path) -> None:
    suite = write_suite(tmp_path, tiny_suite(models=["max_fusion", "late_fusion"],
                                             metrics=["error_rate", "accuracy"]))
    out = mmbench(plugin_site, "run", str(suite), "--out", str(tmp_path / "o"),
                  "--cache-dir", str(tmp_path / "c"))
    assert out.returncode == 0, out.stderr
    assert "max_fusion" in out.stdout and "error_rate" in out.stdout
    csv = (tmp_path / "o" / "results.csv").read_text()
    assert "max_fusion" in csv and "error_rate" in csv


def test_autoload_can_be_turned_off(plugin_site: Path) -> None:
    out = mmbench(plugin_site, "ls", "models", MMBENCH_NO_PLUGINS="1")
    assert out.returncode == 0
    assert "max_fusion" not in out.stdout and "broken_fusion" not in out.stderr
