"""Choosing the torch device from ``--device auto|cpu|cuda``."""

from __future__ import annotations

import torch

from mmbench.errors import MMBenchError

DEVICE_CHOICES = ("auto", "cpu", "cuda")


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA when available; ``cuda`` without a GPU is a user error."""
    if name not in DEVICE_CHOICES and not name.startswith("cuda:"):
        raise MMBenchError(f"unknown device '{name}'; use one of {', '.join(DEVICE_CHOICES)}")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise MMBenchError(
            "--device cuda was asked for but torch sees no CUDA GPU; install a CUDA build of torch "
            "(see README) or use --device cpu"
        )
    return torch.device(name)
