"""Models: the FusionModel contract (per-modality encoders, a fusion step, a head), the zoo
(one family per module, registered), and the adapter that makes any ``nn.Module`` a model.
Building a model from a suite entry: :func:`mmbench.create_model` (``mmbench.config.build``)."""

from mmbench.models.base import FusionModel

__all__ = ["FusionModel"]
