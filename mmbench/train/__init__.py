"""Training recipes and the checkpoint cache."""

from mmbench.train.base import Recipe, TrainReport

__all__ = ["Recipe", "TrainReport"]
