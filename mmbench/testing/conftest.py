"""Fixtures of the contract tests (shipped with mmbench, so they run on an installed plugin)."""

from __future__ import annotations

import pytest

from mmbench.data.base import MultimodalDataset
from mmbench.data.synthetic import make_synthetic
from mmbench.testing.fitting import ALL_KINDS


@pytest.fixture(scope="session")
def synth() -> MultimodalDataset:
    """All four kinds, and a held-out covariate-shifted group ``ood`` (for ``natural_shift``)."""
    return make_synthetic(modalities=ALL_KINDS, n_samples=240, n_classes=3, noise=0.8, seed=3, ood_shift=3.0)
