"""One preparation path: ``mmbench validate``, ``mmbench.validate``, ``mmbench run``, ``mmbench.run``
and ``mmbench.evaluate`` load, check and plan a suite with the same function
(:func:`mmbench.runner.prepare`), so a suite validate accepts never fails its preparation in run and
the reverse; run options are defined once (``RunOptions``, built from the command line's arguments
field by field); and the command line reaches the library only through its public API."""

from __future__ import annotations

import ast
import dataclasses
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import run_cli, tiny_suite, write_suite

import mmbench
from mmbench import runner
from mmbench.cli import build_parser
from mmbench.config.options import DataOptions, ExecOptions, RunOptions
from mmbench.errors import MMBenchError
from mmbench.runner import Prepared, prepare

CLI = Path(mmbench.__file__).with_name("cli.py")
#: what cli.py may import: the public API, errors, the version, escaping, the standard library, tabulate
ALLOWED = {"mmbench", "mmbench.api", "mmbench.errors", "mmbench.version", "mmbench.text", "mmbench.plugins",
           "tabulate"}

ONE_MODEL = {"models": ["late_fusion"], "recipes": [{"name": "standard", "params": {"epochs": 1}}]}
BAD_TARGET = [{"name": "adversarial", "params": {"attacks": ["fgsm"], "eps": [0.1], "targets": ["imag"]}}]

#: (suite changes, run options, a piece of the error or None when the suite is fine)
CASES = {
    "valid": ({}, {}, None),
    "seeds override": ({}, {"seeds": [3, 4]}, None),
    "amp": ({}, {"amp": True, "threads": 2}, None),
    "unknown model": ({"models": ["late_fuson"]}, {}, "unknown model 'late_fuson'"),
    "missing target": ({"perturbations": BAD_TARGET}, {}, "unknown target modality 'imag'"),
    "threads 0": ({}, {"threads": 0}, "--threads must be at least 1"),
    "repeated seeds": ({}, {"seeds": [1, 1]}, "'seeds' must be a list of distinct"),
    "unknown device": ({}, {"device": "tpu"}, "unknown device 'tpu'"),
    "unknown executor": ({}, {"executor": "dask"}, "unknown executor 'dask'"),
    "no ray workers": ({}, {"executor": "ray", "workers": 0}, "--workers must be at least 1"),
}


def outcome(call: Any) -> str | None:
    """None when ``call()`` succeeds, else its one-line error."""
    try:
        call()
    except MMBenchError as exc:
        return str(exc)
    return None


@pytest.mark.parametrize("case", sorted(CASES))
def test_validate_succeeds_exactly_when_the_runs_preparation_does(case: str, tmp_path: Path) -> None:
    changes, options, error = CASES[case]
    path = write_suite(tmp_path, tiny_suite(**{**ONE_MODEL, **changes}))
    validated = outcome(lambda: mmbench.validate(path, **options))
    prepared = outcome(lambda: prepare(path, RunOptions(**options)))
    assert validated == prepared
    if error is None:
        assert validated is None
        return
    assert validated is not None and error in validated
    out = tmp_path / "out"
    assert outcome(lambda: mmbench.run(path, out_dir=out, cache_dir=tmp_path / "c", progress=False,
                                       **options)) == validated
    assert not out.exists()  # refused in the preparation, before anything is written


def test_validate_reports_the_prepared_plan(tmp_path: Path) -> None:
    path = write_suite(tmp_path, tiny_suite(models=["late_fusion", "seed_concat"]))
    options = RunOptions(seeds=(3, 4), progress=False)
    validation, prepared = mmbench.validate(path, options), prepare(path, options)
    assert isinstance(prepared, Prepared) and prepared.suite.seeds == (3, 4)
    assert (validation.models, validation.evaluations) == (len(prepared.plan.train_cells),
                                                           len(prepared.plan.eval_cells)) == (4, 4)
    assert validation.seeds == (3, 4) and validation.rows and validation.rows[0].startswith("dataset 'synthetic'")
    assert validation.report("s.yaml").splitlines()[-1] == "s.yaml: ok (4 models to train, 4 evaluations, seeds [3, 4])"


def test_run_validate_and_evaluate_go_through_the_one_preparation(tmp_path: Path, monkeypatch) -> None:
    """Each entry point reaches ``runner.prepare`` (its planning step is stopped here)."""
    from mmbench.testing.fitting import ALL_KINDS, PlainNet

    calls = []

    def stopped(*args: Any, **kwargs: Any) -> None:
        calls.append(args[0].name)
        raise MMBenchError("stopped at planning")

    monkeypatch.setattr(runner, "make_plan", stopped)
    path = write_suite(tmp_path, tiny_suite(**ONE_MODEL))
    data = mmbench.load_dataset("synthetic", modalities=ALL_KINDS, n_samples=90, n_classes=3, seed=1)
    entries = {
        "validate": lambda: mmbench.validate(path),
        "run": lambda: mmbench.run(path, out_dir=tmp_path / "o", cache_dir=tmp_path / "c"),
        "evaluate": lambda: mmbench.evaluate(PlainNet(3), data, out_dir=tmp_path / "e", progress=False),
        "cli validate": lambda: run_cli("validate", str(path)),
        "cli run": lambda: run_cli("run", str(path), "--out", str(tmp_path / "o"), "-q"),
    }
    for name, call in entries.items():
        done = outcome(call)
        assert done is None or done == "stopped at planning", name
    assert calls == ["tiny", "tiny", "evaluate", "tiny", "tiny"]
    assert not (tmp_path / "o").exists() and not (tmp_path / "e").exists()


@pytest.mark.parametrize("flags,needle", [
    (["--threads", "0"], "--threads must be at least 1"),
    (["--seeds", "1", "1"], "'seeds' must be a list of distinct"),
    (["--device", "tpu"], "unknown device 'tpu'"),
])
def test_the_commands_validate_and_run_refuse_the_same_options(flags: list[str], needle: str,
                                                                tmp_path: Path) -> None:
    path = str(write_suite(tmp_path, tiny_suite(**ONE_MODEL)))
    validated = run_cli("validate", path, *flags)
    ran = run_cli("run", path, "--out", str(tmp_path / "o"), *flags)
    assert validated.returncode == ran.returncode == 2
    assert validated.stderr == ran.stderr and needle in validated.stderr
    assert not (tmp_path / "o").exists()


def test_the_validate_command_applies_seeds(tmp_path: Path) -> None:
    path = write_suite(tmp_path, tiny_suite(**ONE_MODEL))
    out = run_cli("validate", str(path), "--seeds", "3", "4", "--threads", "2", "--amp", "-q")
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[-1] == f"{path}: ok (2 models to train, 2 evaluations, seeds [3, 4])"


def _imports(tree: ast.AST) -> set[str]:
    """Every module an AST imports, at module level or inside functions (``from a import b``: ``a``)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "relative import in cli.py"
            found.add(node.module or "")
    return found


def test_the_cli_imports_only_the_public_api() -> None:
    imported = _imports(ast.parse(CLI.read_text()))
    internal = sorted(m for m in imported if m.split(".")[0] == "mmbench" and m not in ALLOWED)
    assert not internal, f"cli.py imports internal modules {internal}; use the public API (mmbench.*)"
    other = sorted(m for m in imported if m.split(".")[0] not in {"mmbench", "tabulate", "__future__"}
                   and m.split(".")[0] not in sys.stdlib_module_names)
    assert not other, other


def test_the_public_api_lists_every_command() -> None:
    for name in ("validate", "load_suite", "republish", "compare", "status", "inspect_store", "repair",
                 "describe", "attacks", "refused_attacks", "setup_plugins", "RunOptions"):
        assert name in mmbench.__all__ and getattr(mmbench, name).__doc__, name


#: the flags that change how a suite is prepared (``validate`` takes them too), with values that are not defaults
PREPARING = ["--device", "cpu", "--seeds", "3", "4", "--threads", "2", "--amp", "--executor", "ray",
             "--address", "ray://head:10001", "--workers", "3", "--trust-pickle", "--data-dir", "root"]
RUN_ARGS = ["run", "suite.yaml", "--out", "o", "--cache-dir", "c", "--summary", "s.md", *PREPARING, "--force",
            "--fail-fast", "--wait", "-v"]


def test_from_args_builds_every_field_from_the_run_command() -> None:
    namespace = build_parser().parse_args(RUN_ARGS)
    options = RunOptions.from_args(namespace, progress=False)
    defaults = RunOptions()
    unset = [f.name for f in dataclasses.fields(RunOptions)
             if getattr(options, f.name) == getattr(defaults, f.name)]
    assert not unset, f"RunOptions fields no flag of 'mmbench run' sets: {unset}"
    missing = [f.name for f in dataclasses.fields(RunOptions) if f.name != "progress" and not hasattr(namespace, f.name)]
    assert not missing, f"RunOptions fields with no flag of 'mmbench run' (dest = the field's name): {missing}"
    assert options == RunOptions(out_dir=Path("o"), cache_dir=Path("c"), summary=Path("s.md"), device="cpu",
                                 seeds=(3, 4), progress=False, verbose=True, threads=2, amp=True, force=True,
                                 fail_fast=True, executor="ray", address="ray://head:10001", workers=3,
                                 trust_pickle=True, data_root="root", wait=True)


def test_validate_takes_every_preparation_option_of_run() -> None:
    """The flags that change the preparation parse to the same options under both commands."""
    run = RunOptions.from_args(build_parser().parse_args(["run", "s.yaml", *PREPARING]))
    validate = RunOptions.from_args(build_parser().parse_args(["validate", "s.yaml", *PREPARING]))
    assert run == validate and run != RunOptions()


def test_options_resolve_into_what_each_stage_reads() -> None:
    options = RunOptions(threads=3, amp=True, force=True, fail_fast=True, progress=False, verbose=True,
                         trust_pickle=True, data_root="d", seeds=[2])
    assert options.seeds == (2,)
    assert options.data == DataOptions(trust_pickle=True, data_root="d")
    assert options.execution == ExecOptions(threads=3, amp=True, force=True, fail_fast=True, progress=False,
                                            verbose=True)
    for stage in (DataOptions, ExecOptions):  # each stage's field is a RunOptions field of the same meaning
        assert {f.name for f in dataclasses.fields(stage)} <= {f.name for f in dataclasses.fields(RunOptions)}
