"""Metrics on predictions: a tiny update()/compute() contract (after torchmetrics)."""

from mmbench.metrics.base import Metric

__all__ = ["Metric"]
