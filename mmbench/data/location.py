"""Where user-supplied data files live: a suite's ``data_dir``, else ``--data-dir`` /
``$MMBENCH_DATA`` (the data root, with one entry per dataset under it)."""

from __future__ import annotations

import os
from pathlib import Path

from mmbench.data.files import regular_file
from mmbench.errors import MMBenchError

DATA_ENV = "MMBENCH_DATA"


def data_path(dataset: str, explicit: str | None, data_root: str | None, entry: str, source: str) -> Path:
    """``explicit`` if given, else ``<root>/<entry>`` with root from ``--data-dir`` or
    ``$MMBENCH_DATA``; a one-line error naming what is expected and where it comes from."""
    if explicit:
        return Path(explicit).expanduser()
    root = data_root or os.environ.get(DATA_ENV)
    if not root:
        raise MMBenchError(f"{dataset}: no data location; give data_dir in the suite, --data-dir ROOT "
                           f"or ${DATA_ENV} (expects ROOT/{entry}; {source})")
    return Path(root).expanduser() / entry


def require(dataset: str, path: Path, source: str) -> Path:
    """``path`` if it exists, else a one-line error naming it and where the files come from."""
    if not path.exists():
        raise MMBenchError(f"{dataset}: {path} not found; {source}")
    return regular_file(path, dataset)
