"""Metrics: the contract (one function of per-row outcomes and row weights), the built-in
classification, regression and multilabel metrics, and the per-row outcomes that evaluation
cells keep."""

from mmbench.metrics.base import Metric

__all__ = ["Metric"]
