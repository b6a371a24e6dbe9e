"""Training: the recipe contract (a config dataclass plus ``fit``), the built-in recipes
(standard, adversarial, modality dropout, pretrained) and the checkpoint cache."""

from mmbench.train.base import Recipe, TrainReport

__all__ = ["Recipe", "TrainReport"]
