"""The command line as a user meets it: listing, validation, and one-line errors with exit 2."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import Completed, run_cli, tiny_suite, write_suite

REPO = Path(__file__).resolve().parents[1]


def mmbench(*args: str, cwd: Path = REPO, env: dict[str, str] | None = None) -> Completed:
    """In this process: argument parsing, checks and messages are the same code as the console
    script's (tests/test_fast_errors.py and test_hardening.py run it as a subprocess)."""
    return run_cli(*args, cwd=cwd, env=env)


@pytest.mark.parametrize("kind", ["models", "datasets", "perturbations", "corruptions", "metrics", "recipes", "families"])
def test_ls_lists_each_registry(kind: str) -> None:
    out = mmbench("ls", kind)
    assert out.returncode == 0, out.stderr
    assert {"models": "late_fusion", "datasets": "mfeat", "perturbations": "clean", "corruptions": "motion_blur",
            "metrics": "macro_f1", "recipes": "standard", "families": "adv_robust_accuracy (composite)"}[kind] in out.stdout
    if kind == "perturbations":  # which modality kinds each shift corruption applies to
        assert re.search(r"time_mask\s+sequence", out.stdout)


def test_ls_pattern() -> None:
    out = mmbench("ls", "models", "*fusion")
    assert "late_fusion" in out.stdout and "unimodal" not in out.stdout and "seed_concat" not in out.stdout


def test_validate_ok() -> None:
    out = mmbench("validate", "suites/smoke.yaml")
    assert out.returncode == 0 and "ok" in out.stdout


def _assert_one_line_error(out: Completed, *needles: str) -> None:
    assert out.returncode == 2, (out.stdout, out.stderr)
    assert "Traceback" not in out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    for needle in needles:
        assert needle in lines[0]


@pytest.mark.parametrize("suite,needles", [
    ({**tiny_suite(), "models": ["late_fuson"]}, ["unknown model 'late_fuson'", "did you mean 'late_fusion'"]),
    ({**tiny_suite(), "datasets": ["mfet"]}, ["unknown dataset 'mfet'", "did you mean 'mfeat'"]),
    ({**tiny_suite(), "seeds": "zero"}, ["'seeds' must be"]),
    ({**tiny_suite(), "models": [{"name": "late_fusion", "params": {"dim": "wide"}}]}, ["'dim' must be int"]),
    ({**tiny_suite(), "perturbations": [{"name": "adversarial", "params": {"attacks": ["pdg"], "eps": [0.1]}}]},
     ["unknown attack 'pdg'", "did you mean 'pgd'"]),
    ({**tiny_suite(), "perturbations": [{"name": "adversarial", "params": {"attacks": ["pgd"], "eps": [-0.1]}}]},
     ["eps must be finite numbers >= 0"]),
    ({**tiny_suite(), "perturbations": [{"name": "adversarial", "params": {"attacks": ["pgd"], "eps": [0.1], "targets": ["imag"]}}]},
     ["unknown target modality 'imag'", "did you mean 'img'"]),
    ({**tiny_suite(), "perturbations": [{"name": "adversarial", "params": {"attacks": ["apgd"]}}]},
     ["attack 'apgd' needs 'eps'"]),
    ({**tiny_suite(), "perturbations": [{"name": "shift", "params": {"severities": [6]}}]},
     ["severities must be integers 0-5"]),
    ({**tiny_suite(), "perturbations": [{"name": "shift", "params": {"corruptions": ["time_mask"], "targets": ["img"]}}]},
     ["corruption 'time_mask' applies to sequence modalities, not to 'img' (image)"]),
    ({**tiny_suite(), "baseline": "late_fushion"}, ["baseline 'late_fushion' is not a model", "late_fusion"]),
])
@pytest.mark.parametrize("command", ["run", "validate"])
def test_bad_input_is_one_line_exit_2(tmp_path: Path, suite, needles, command: str) -> None:
    path = write_suite(tmp_path, suite)
    extra = ["--out", str(tmp_path / "out"), "--cache-dir", str(tmp_path / "c")] if command == "run" else []
    out = mmbench(command, str(path), *extra)
    _assert_one_line_error(out, *needles)
    assert not (tmp_path / "out").exists() and not (tmp_path / "c").exists()


def test_malformed_yaml_and_missing_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("models: [late_fusion\n")
    _assert_one_line_error(mmbench("run", str(bad)), "malformed YAML")
    _assert_one_line_error(mmbench("run", str(tmp_path / "none.yaml")), "suite file not found")


def test_cuda_request_without_gpu_is_a_clear_error(tmp_path: Path) -> None:
    import torch

    if torch.cuda.is_available():  # on a GPU machine the same command must simply work
        out = mmbench("run", str(write_suite(tmp_path, tiny_suite(models=["late_fusion"]))),
                      "--device", "cuda", "--out", str(tmp_path / "o"), "--cache-dir", str(tmp_path / "c"))
        assert out.returncode == 0, out.stderr
        return
    path = write_suite(tmp_path, tiny_suite())
    _assert_one_line_error(mmbench("run", str(path), "--device", "cuda"), "no CUDA GPU", "--device cpu")
    _assert_one_line_error(mmbench("run", str(path), "--device", "tpu"), "unknown device 'tpu'")


def test_unknown_ls_kind_is_exit_2() -> None:
    out = mmbench("ls", "modles")
    assert out.returncode == 2 and "invalid choice" in out.stderr and "Traceback" not in out.stderr
