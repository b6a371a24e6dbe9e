"""Checkpoint cache keyed by the content hash of dataset, model, recipe and seed.

Files are written atomically (temporary file, then rename) and read with ``weights_only=True``;
an unreadable file is reported and treated as a miss, so the model is retrained.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

log = logging.getLogger(__name__)


class CheckpointCache:
    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    def path(self, key: str) -> Path:
        return self.root / f"{key}.pt"

    def load(self, key: str, model: nn.Module) -> dict[str, Any] | None:
        """Load the weights for ``key`` into ``model``; return the stored metadata, or None."""
        path = self.path(key)
        if not path.is_file():
            return None
        try:
            payload = torch.load(path, map_location="cpu", weights_only=True)
            model.load_state_dict(payload["state_dict"])
            return dict(payload["meta"])
        except Exception as exc:  # corrupt or incompatible file: retrain instead of crashing
            log.warning("ignoring unreadable checkpoint %s (%s); retraining", path, type(exc).__name__)
            return None

    def save(self, key: str, model: nn.Module, meta: dict[str, Any]) -> Path:
        self.root.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
        fd, tmp = tempfile.mkstemp(dir=self.root, suffix=".tmp")
        os.close(fd)
        try:
            torch.save({"state_dict": state, "meta": meta}, tmp)
            os.replace(tmp, self.path(key))
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return self.path(key)
