"""Content hashes: cell keys and derived seeds (source hashes: engine/sources.py)."""

from __future__ import annotations

import hashlib
import json
from typing import Any


def content_hash(obj: Any) -> str:
    """A stable SHA-256 of a JSON-able object (keys sorted)."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def derive_seed(*parts: Any) -> int:
    """A 31-bit seed derived from the given parts (suite seed, cell key, purpose)."""
    return int(content_hash([str(p) for p in parts])[:8], 16) & 0x7FFFFFFF
