"""Checkpoint cache keyed by the content hash of dataset, model, recipe and seed.

Files are written atomically (temporary file, then rename) and read with ``weights_only=True``.
Each checkpoint's SHA-256 is recorded in a sidecar (``<key>.sha256``, written atomically after
it) and verified on load: a checkpoint that is unreadable, does not match its recorded hash
(planted, damaged, half-copied) or holds non-finite weights is reported in one warning and
treated as a miss, so the model is retrained; it never silently changes a result.
"""

from __future__ import annotations

import hashlib
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

    def digest_path(self, key: str) -> Path:
        return self.root / f"{key}.sha256"

    def load(self, key: str, model: nn.Module) -> dict[str, Any] | None:
        """Load the weights for ``key`` into ``model``; return the stored metadata, or None
        (no checkpoint, or one that fails verification: a warning says which and why)."""
        path = self.path(key)
        if not path.is_file():
            return None
        problem = self._verify(key)
        if problem is None:
            try:
                payload = torch.load(path, map_location="cpu", weights_only=True)
                state = payload["state_dict"]
                bad = [k for k, v in state.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
                if bad:
                    problem = f"non-finite weights in {bad[0]}"
                else:
                    model.load_state_dict(state)
                    return dict(payload["meta"])
            except Exception as exc:  # corrupt or incompatible file: retrain instead of crashing
                problem = f"unreadable ({type(exc).__name__})"
        log.warning("ignoring checkpoint %s: %s; retraining", path, problem)
        return None

    def _verify(self, key: str) -> str | None:
        """Why the checkpoint of ``key`` cannot be trusted (None when its hash matches)."""
        try:
            recorded = self.digest_path(key).read_text().strip()
        except OSError:
            return "no recorded hash (not written by this cache, or its write was cut off)"
        actual = _sha256(self.path(key))
        return None if actual == recorded else "its content does not match its recorded hash"

    def save(self, key: str, model: nn.Module, meta: dict[str, Any]) -> Path:
        self.root.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
        _atomic(self.path(key), lambda tmp: torch.save({"state_dict": state, "meta": meta}, tmp))
        digest = _sha256(self.path(key))
        _atomic(self.digest_path(key), lambda tmp: Path(tmp).write_text(digest + "\n"))
        return self.path(key)


def _atomic(target: Path, write: Any) -> None:
    """``write(temporary path)``, then rename it over ``target``."""
    fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
