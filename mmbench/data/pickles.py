"""Loading pickle files, which can run arbitrary code, only when the user says so.

MultiBench ships some datasets as pickles. mmbench loads them only under ``--trust-pickle``
(``RunOptions.trust_pickle``): dataset loaders that read pickles declare a ``trust_pickle``
parameter, which the harness fills in (it is not a suite parameter), and call
:func:`load_pickle` with it.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

from mmbench.data.files import regular_file
from mmbench.errors import MMBenchError


def load_pickle(path: Path, trusted: bool) -> Any:
    """Unpickle ``path`` if ``trusted``; otherwise a one-line refusal naming the flag."""
    if not trusted:
        raise MMBenchError(f"refusing to load {path}: pickle files can run code when loaded; "
                           "pass --trust-pickle if you trust where the file came from")
    if not path.exists():
        raise MMBenchError(f"data file not found: {path}")
    with regular_file(path, "data file").open("rb") as handle:
        return pickle.load(handle)  # noqa: S301 (the user vouched for the file)
