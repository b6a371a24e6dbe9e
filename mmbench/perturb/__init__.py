"""Perturbations: what happens to a batch before the harness measures the model on it."""

from mmbench.perturb.base import Perturbation

__all__ = ["Perturbation"]
