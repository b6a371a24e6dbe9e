"""Everything runs on the model's device: every registered perturbation, corruption and model,
on the CPU always and on CUDA when this machine has a GPU (the same tests, not a separate suite).
On a GPU machine, `benchmarks/gpu_check.sh` runs these and `suites/gpu-check.yaml`."""

from __future__ import annotations

import pytest
import torch

import mmbench
from mmbench.data.base import MultimodalDataset
from mmbench.engine.plan import expand_perturbation
from mmbench.engine.suite import Component
from mmbench.registry import CORRUPTIONS, MODELS, PERTURBATIONS

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(scope="module", params=DEVICES)
def on_device(request, synth: MultimodalDataset) -> tuple[torch.device, MultimodalDataset]:
    device = torch.device(request.param)
    return device, synth.to(device)


@pytest.mark.parametrize("name", MODELS.names())
def test_models_run_on_the_device(name: str, on_device) -> None:
    device, data = on_device
    torch.manual_seed(0)
    model = mmbench.create_model(name, data.modalities, data.n_classes).to(device).eval()
    batch, _ = data.test.rows(slice(0, 8))
    with torch.no_grad():
        logits = model(batch)
    assert logits.device.type == device.type and logits.shape == (8, data.n_classes)


@pytest.mark.parametrize("name", PERTURBATIONS.names())
def test_perturbations_stay_on_the_device(name: str, on_device) -> None:
    device, data = on_device
    torch.manual_seed(0)
    model = mmbench.create_model("late_fusion", data.modalities, data.n_classes).to(device).eval()
    batch, labels = data.test.rows(slice(0, 8))
    example = PERTURBATIONS.entry(name).meta.get("example", {})
    for case in expand_perturbation(Component(name, dict(example)), data):
        if case.group is not None:
            continue  # held-out groups are other rows, not a transformation of this batch
        out = case.apply(model, batch, labels, seed=0)
        for key, x in batch.items():
            assert out[key].device.type == device.type, (name, case, key)
            assert out[key].dtype == x.dtype and out[key].shape == x.shape


@pytest.mark.parametrize("name", CORRUPTIONS.names())
def test_corruptions_stay_on_the_device(name: str, on_device) -> None:
    device, data = on_device
    corruption = CORRUPTIONS.get(name)
    batch, _ = data.test.rows(slice(0, 8))
    for spec in data.modalities:
        if corruption.unsupported(spec) is None:
            out = corruption.apply(batch[spec.name], spec, 3, seed=0)
            assert out.device.type == device.type and out.dtype == batch[spec.name].dtype
            assert torch.equal(out, corruption.apply(batch[spec.name], spec, 3, seed=0))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="compares CUDA with CPU: needs a GPU")
def test_cuda_and_cpu_agree_on_a_small_suite(tmp_path) -> None:
    """The same suite on both devices: clean accuracies within one test row of each other."""
    from conftest import tiny_suite, write_suite

    from mmbench.engine.runner import RunOptions, run_suite

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

    from mmbench.engine.runner import RunOptions, run_suite

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
