"""Shared fixtures: small synthetic data covering every modality kind, and suite helpers."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import re
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from mmbench.data.base import MultimodalDataset
from mmbench.data.synthetic import make_synthetic

#: A small dataset with one modality of each kind (image, sequence, vector, tokens).
ALL_KINDS: list[dict[str, Any]] = [
    {"name": "img", "kind": "image", "shape": [1, 8, 8], "informativeness": 1.0},
    {"name": "aud", "kind": "sequence", "shape": [2, 16], "informativeness": 0.8},
    {"name": "tab", "kind": "vector", "shape": [10], "informativeness": 0.6},
    {"name": "txt", "kind": "tokens", "shape": [6], "informativeness": 0.8, "vocab_size": 12},
]


@pytest.fixture(scope="session")
def synth() -> MultimodalDataset:
    """All four kinds, and a held-out covariate-shifted group ``ood`` (for ``natural_shift``)."""
    return make_synthetic(modalities=ALL_KINDS, n_samples=240, n_classes=3, noise=0.8, seed=3, ood_shift=3.0)


def write_suite(folder: Path, data: dict[str, Any], name: str = "suite.yaml") -> Path:
    path = folder / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def tiny_suite(models: list[Any] | None = None, **extra: Any) -> dict[str, Any]:
    """A suite on small synthetic data that trains in about a second per model."""
    suite: dict[str, Any] = {
        "name": "tiny",
        "datasets": [{"name": "synthetic", "params": {"modalities": ALL_KINDS, "n_samples": 160,
                                                       "n_classes": 3, "seed": 1}}],
        "models": models or ["late_fusion", "seed_concat"],
        "recipes": [{"name": "standard", "params": {"epochs": 3, "batch_size": 32}}],
        "seeds": [0],
    }
    suite.update(extra)
    return suite


def pyproject(name: str, entry_points: dict[str, dict[str, str]], packages: tuple[str, ...] = ()) -> str:
    """A plugin's pyproject.toml: distribution ``name``, its ``packages`` (none: modules at the
    top level) and ``entry_points`` (group -> name -> ``module:object``)."""
    lines = ['[build-system]', 'requires = ["setuptools>=61"]', 'build-backend = "setuptools.build_meta"', '',
             '[project]', f'name = "{name}"', 'version = "0.0.1"', '']
    if packages:
        lines += ['[tool.setuptools]', f'packages = {json.dumps(list(packages))}', '']
    for group, entries in entry_points.items():
        lines += [f'[project.entry-points."{group}"]', *(f'{k} = "{v}"' for k, v in entries.items()), '']
    return "\n".join(lines)


def install_package(source: Path, site: Path, files: dict[str, str]) -> Path:
    """Write ``files`` (relative path -> text, ``pyproject.toml`` among them) under ``source``
    and pip-install that package into the folder ``site`` (offline, no build isolation), as a
    plugin author would install theirs; returns ``site`` (put it on PYTHONPATH)."""
    for relative, text in files.items():
        path = source / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--no-index", "--target", str(site), str(source)], check=True, capture_output=True, timeout=300)
    assert list(site.glob("*.dist-info"))
    return site


@dataclass
class Completed:
    """What a command returned and printed (the fields of ``subprocess.CompletedProcess`` tests read)."""

    returncode: int
    stdout: str
    stderr: str


def run_cli(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> Completed:
    """``mmbench ARGS`` in this process (no Python + torch start-up per call): its exit status and
    what it printed; the working directory, environment and logging are restored afterwards. For
    what a subprocess proves nothing extra about (a start-up path, a signal, a hang needs one)."""
    from mmbench.cli import main

    out, err = io.StringIO(), io.StringIO()
    saved_env, saved_cwd = dict(os.environ), Path.cwd()
    root = logging.getLogger()
    saved_logging = (list(root.handlers), root.level)
    root.handlers[:] = []  # the CLI's logging set-up replaces (and closes) the root's handlers
    try:
        os.environ.update(env or {})
        if cwd is not None:
            os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(list(args))
            except SystemExit as exc:  # argparse's usage errors
                code = exc.code if isinstance(exc.code, int) else 2
    finally:
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
        for handler in root.handlers:
            handler.close()
        root.handlers[:], root.level = saved_logging
    return Completed(int(code), out.getvalue(), err.getvalue())


def pytest_configure(config: pytest.Config) -> None:
    """Under ``make test`` every core runs a test file: one torch thread per worker, so that
    workers do not oversubscribe the cores (a subprocess run sets its own: ``--threads``)."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        import torch

        torch.set_num_threads(1)


#: tests/README.md: the time budget of each test file (seconds, a row per file)
BUDGETS = Path(__file__).with_name("README.md")
_SPENT: dict[str, float] = {}


def budgets() -> dict[str, float]:
    """Test file (relative to the repository) -> its budget in seconds, from tests/README.md."""
    return {name: float(seconds) for name, seconds in
            re.findall(r"^\| `([^`]+\.py)` \| (\d+) \|", BUDGETS.read_text(), re.M)}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Sum each file's setup, call and teardown time (under xdist, on the controller)."""
    _SPENT[report.nodeid.split("::")[0]] = _SPENT.get(report.nodeid.split("::")[0], 0.0) + report.duration


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """The test files that took longer than their budget (a prompt, not a failure: timing is noisy)."""
    limits = budgets()
    over = [(f, s, limits[f]) for f, s in sorted(_SPENT.items()) if f in limits and s > limits[f]]
    for name, spent, limit in over:
        terminalreporter.write_line(f"test time over budget (tests/README.md): {name} {spent:.0f} s, budget {limit:.0f} s")
