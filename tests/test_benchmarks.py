"""Every benchmark script still runs (issue: benchmarks that cannot rot): each one at its tiny
size, in-process through its ``main(argv)``, checked only to finish and print its ratio line.
The figures of a tiny run mean nothing; speed is measured by ``make bench``, never here."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
import torch
from conftest import tiny_suite

from mmbench.api import run

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def script(name: str) -> ModuleType:
    """``benchmarks/<name>.py`` imported from its path (benchmarks/ is no package)."""
    spec = importlib.util.spec_from_file_location(f"benchmark_{name}", BENCHMARKS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(autouse=True)
def one_torch_thread() -> Iterator[None]:
    """One torch thread, as a run's cells use (two spin-wait on a busy 2-core machine), restored
    afterwards (subset_sweep.py sets its own)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def two_results(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two results folders of one tiny suite on the CPU (the second loads the first's model)."""
    root = tmp_path_factory.mktemp("devices")
    suite = tiny_suite(models=["late_fusion"], perturbations=["clean", {"name": "missing"}])
    suite["recipes"][0]["params"]["epochs"] = 1
    for name in ("reference", "other"):
        run(suite, out_dir=root / name, cache_dir=root / "cache", device="cpu", progress=False)
    return root / "reference", root / "other"


def test_compare_devices(two_results: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    reference, other = two_results
    assert script("compare_devices").main([str(reference), str(other / "results.csv")]) == 0
    out = capsys.readouterr().out
    assert "rows on one device only: 0" in out and "largest clean-accuracy difference: 0.0000" in out


def test_cuda_attacks_on_the_cpu(capsys: pytest.CaptureFixture[str]) -> None:
    assert script("cuda_attacks").main(["--tiny", "--device", "cpu"]) == 0
    assert "3 of 3 attacks work on cpu" in capsys.readouterr().out


def test_cuda_attacks_without_cuda_says_it_is_skipped(monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert script("cuda_attacks").main(["--tiny"]) == 0
    assert "skipped, torch sees no CUDA GPU" in capsys.readouterr().out


def test_error_latency(capsys: pytest.CaptureFixture[str]) -> None:
    script("error_latency").main(["--tiny"])
    assert capsys.readouterr().out.count("of the 1 s target") == 2


def test_pgd_overhead(capsys: pytest.CaptureFixture[str]) -> None:
    script("pgd_overhead").main(["--tiny"])
    assert "ratio harness / bare = " in capsys.readouterr().out


def test_ray_scaling(capsys: pytest.CaptureFixture[str]) -> None:
    script("ray_scaling").main(["--tiny"])
    out = capsys.readouterr().out
    assert "speed-up" in out and "identical tables: True" in out


def test_smoke_walltime(capsys: pytest.CaptureFixture[str]) -> None:
    assert script("smoke_walltime").main(["--tiny"]) == 0
    out = capsys.readouterr().out
    assert "| smoke CLI" in out and "| clean in-process" in out and "cold/warm" in out


def test_subset_sweep(capsys: pytest.CaptureFixture[str]) -> None:
    script("subset_sweep").main(["--tiny"])
    out = capsys.readouterr().out
    assert "all 63 subsets" in out and "ratio sweep / clean = " in out


def test_suite_checks(capsys: pytest.CaptureFixture[str]) -> None:
    script("suite_checks").main(["--tiny"])
    out = capsys.readouterr().out
    assert "100 models" in out and "ratio" in out


def test_token_search(capsys: pytest.CaptureFixture[str]) -> None:
    assert script("token_search").main(["--tiny"]) == 0
    out = capsys.readouterr().out
    assert "| hotflip" in out and "| brute-force greedy" in out and "| exhaustive" in out
    assert "ratio forward rows hotflip / brute force = " in out
