"""Datasets: the modality contract (:mod:`.base`), splitting and the built-in dataset families."""

from mmbench.data.base import Batch, ModalityKind, ModalitySpec, MultimodalDataset, Split

__all__ = ["Batch", "ModalityKind", "ModalitySpec", "MultimodalDataset", "Split"]
