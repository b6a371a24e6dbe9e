"""Content hashes: cell keys, code versions and derived seeds."""

from __future__ import annotations

import hashlib
import json
import sys
from functools import lru_cache
from pathlib import Path
from typing import Any


def content_hash(obj: Any) -> str:
    """A stable SHA-256 of a JSON-able object (keys sorted)."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


@lru_cache(maxsize=None)
def module_version(module_name: str) -> str:
    """Hash of a module's source file, so that changing the code invalidates cached results."""
    module = sys.modules.get(module_name)
    path = getattr(module, "__file__", None)
    if not path or not Path(path).is_file():
        return module_name
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


def code_version(*objects: Any) -> dict[str, str]:
    """Source hashes of the modules that define ``objects``."""
    return {obj.__module__: module_version(obj.__module__) for obj in objects}


def derive_seed(*parts: Any) -> int:
    """A 31-bit seed derived from the given parts (suite seed, cell key, purpose)."""
    return int(content_hash([str(p) for p in parts])[:8], 16) & 0x7FFFFFFF
