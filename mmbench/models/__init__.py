"""Fusion models on one contract: per-modality encoders, a fusion step, a head."""

from mmbench.models.base import FusionModel, create_model

__all__ = ["FusionModel", "create_model"]
