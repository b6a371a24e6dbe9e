"""Run every catalogued torchattacks attack through mmbench on a CUDA device on a few synthetic
rows, and report which work there. Part of ``gpu_check.sh``: some torchattacks attacks build
tensors on the CPU internally (JSMA's Jacobian, for one), and this is where that shows. Exit
status 1 if an attack fails or leaves the device. Without a CUDA device it prints that it is
skipped and exits 0, unless ``--device cpu`` asks for the same run on the CPU (all attacks there
take minutes). ``--tiny`` (2 rows; fgsm, deepfool and the image-only pixle) only checks that the
script still runs.

    .venv/bin/python benchmarks/cuda_attacks.py [--device cuda|cpu] [--rows N] [--attacks NAME ...] [--tiny]
"""

from __future__ import annotations

import argparse
import sys
import time

import torch

import mmbench
from mmbench.config.suite import Component
from mmbench.data.base import MultimodalDataset
from mmbench.data.synthetic import make_synthetic
from mmbench.perturb.attacks import CATALOGUE
from mmbench.plan.cells import expand_perturbation

IMAGE_ONLY = {"pixle", "tifgsm"}  # square / 3-channel images only (docs/attacks.md)
TINY_ATTACKS = ["deepfool", "fgsm", "pixle"]  # an L2, an Linf and an image-only L0 attack


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda", help="default: cuda (skipped without)")
    parser.add_argument("--rows", type=int, default=6, help="synthetic test rows attacked (default 6)")
    parser.add_argument("--attacks", nargs="+", choices=sorted(CATALOGUE), default=sorted(CATALOGUE),
                        metavar="NAME", help="catalogued attacks to run (default: all)")
    parser.add_argument("--tiny", action="store_true", help=f"2 rows, {', '.join(TINY_ATTACKS)}: checks the script runs")
    args = parser.parse_args(argv)
    if args.tiny:
        args.rows, args.attacks = 2, TINY_ATTACKS
    return args


def attempt(name: str, data: MultimodalDataset, model: torch.nn.Module, rows: int, device: torch.device) -> str:
    """``ok``, or what went wrong with attack ``name`` on ``device``."""
    spec = CATALOGUE[name]
    params = {"attacks": [name], "eps": [0.05 if spec.norms[0] == "Linf" else 0.5],
              "norm": spec.norms[0], "targets": ["img" if name in IMAGE_ONLY else "all"]}
    batch, labels = data.test.rows(slice(0, rows))
    try:
        (case,) = expand_perturbation(Component("adversarial", params), data)
        out = case.apply(model, batch, labels, seed=0)
    except Exception as exc:  # report every attack, not just the first failure
        return f"FAILED: {type(exc).__name__}: {str(exc).splitlines()[0][:120]}"
    return "ok" if all(t.device.type == device.type for t in out.values()) else "LEFT THE DEVICE"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        print("cuda_attacks.py: skipped, torch sees no CUDA GPU (--device cpu runs it on the CPU)")
        return 0
    device = torch.device(args.device)
    data = make_synthetic(modalities=[{"name": "img", "kind": "image", "shape": [3, 8, 8]},
                                      {"name": "tab", "kind": "vector", "shape": [12]}],
                          n_samples=200, n_classes=4, seed=0).to(device)
    torch.manual_seed(0)
    model = mmbench.create_model("late_fusion", data.modalities, data.n_classes).to(device).eval()
    failures = 0
    for name in args.attacks:
        start = time.perf_counter()
        status = attempt(name, data, model, args.rows, device)
        failures += status != "ok"
        print(f"{name:14s} {device.type:5s} {time.perf_counter() - start:6.2f} s  {status}")
    print(f"{len(args.attacks) - failures} of {len(args.attacks)} attacks work on {device.type}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
