"""Whole runs on every device: CPU always, CUDA when this machine has a GPU. (Every registered
model, perturbation and corruption on every device: the contract tests in mmbench/testing.) On a
GPU machine, `benchmarks/gpu_check.sh` runs these and `suites/gpu-check.yaml`."""

from __future__ import annotations

import pytest
import torch

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="compares CUDA with CPU: needs a GPU")
def test_cuda_and_cpu_agree_on_a_small_suite(tmp_path) -> None:
    """The same suite on both devices: clean accuracies within one test row of each other."""
    from conftest import tiny_suite, write_suite

    from mmbench.runner import RunOptions, run_suite

    path = write_suite(tmp_path, tiny_suite(models=["late_fusion"]))
    frames = {d: run_suite(path, RunOptions(out_dir=tmp_path / d, cache_dir=tmp_path / f"c{d}", device=d)).frame
              for d in ("cpu", "cuda")}
    a, b = (frames[d].set_index(["model", "metric"])["value"] for d in ("cpu", "cuda"))
    n = int(frames["cpu"]["n"].iloc[0])
    assert ((a - b).abs() <= 1.0 / n + 1e-9).all(), (a, b)


@pytest.mark.parametrize("device", DEVICES)
def test_mixed_precision_for_training_and_clean_evaluation(device: str, tmp_path) -> None:
    """--amp: bfloat16 autocast while training and for clean evaluation; its models have their
    own cache keys; attacks still run (in float32) and accuracy stays close to float32."""
    from conftest import tiny_suite, write_suite

    from mmbench.runner import RunOptions, run_suite

    suite = tiny_suite(models=["late_fusion"], perturbations=["clean", {
        "name": "adversarial", "params": {"attacks": ["fgsm"], "eps": [0.05], "targets": ["img"]}}])
    suite["recipes"][0]["params"]["epochs"] = 10
    path = write_suite(tmp_path, suite)
    fp32 = run_suite(path, RunOptions(out_dir=tmp_path / "a", cache_dir=tmp_path / "c", device=device,
                                      progress=False))
    amp = run_suite(path, RunOptions(out_dir=tmp_path / "b", cache_dir=tmp_path / "c", device=device,
                                     progress=False, amp=True))
    assert amp.models_trained == 1 and not amp.failed  # not served from the float32 checkpoint
    acc = {name: r.frame[(r.frame["family"] == "clean") & (r.frame["metric"] == "accuracy")]["value"].item()
           for name, r in (("fp32", fp32), ("amp", amp))}
    assert abs(acc["amp"] - acc["fp32"]) < 0.15, acc
    assert (amp.frame["family"] == "adversarial").any()
