"""Run every catalogued torchattacks attack through mmbench on the available device (CUDA when
present) on a few synthetic rows, and report which work there. Part of ``gpu_check.sh``: some
torchattacks attacks build tensors on the CPU internally (JSMA's Jacobian, for one), and this is
where that shows. Exit status 1 if an attack fails or leaves the device."""

from __future__ import annotations

import sys
import time

import torch

import mmbench
from mmbench.config.suite import Component
from mmbench.data.synthetic import make_synthetic
from mmbench.perturb.attacks import CATALOGUE
from mmbench.plan.cells import expand_perturbation

IMAGE_ONLY = {"pixle", "tifgsm"}  # square / 3-channel images only (docs/attacks.md)


def main() -> int:
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    data = make_synthetic(modalities=[{"name": "img", "kind": "image", "shape": [3, 8, 8]},
                                      {"name": "tab", "kind": "vector", "shape": [12]}],
                          n_samples=200, n_classes=4, seed=0).to(device)
    torch.manual_seed(0)
    model = mmbench.create_model("late_fusion", data.modalities, data.n_classes).to(device).eval()
    batch, labels = data.test.rows(slice(0, 6))
    failures = 0
    for name in sorted(CATALOGUE):
        spec = CATALOGUE[name]
        params = {"attacks": [name], "eps": [0.05 if spec.norms[0] == "Linf" else 0.5],
                  "norm": spec.norms[0], "targets": ["img" if name in IMAGE_ONLY else "all"]}
        start = time.perf_counter()
        try:
            (case,) = expand_perturbation(Component("adversarial", params), data)
            out = case.apply(model, batch, labels, seed=0)
            on_device = all(t.device.type == device.type for t in out.values())
            status = "ok" if on_device else "LEFT THE DEVICE"
        except Exception as exc:  # report every attack, not just the first failure
            status = f"FAILED: {type(exc).__name__}: {str(exc).splitlines()[0][:120]}"
        failures += status != "ok"
        print(f"{name:14s} {device.type:5s} {time.perf_counter() - start:6.2f} s  {status}")
    print(f"{len(CATALOGUE) - failures} of {len(CATALOGUE)} attacks work on {device.type}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
