"""How a suite is run (``RunOptions``): shared by the runner, the executors and their workers."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class RunOptions:
    """How to run a suite. ``out_dir`` defaults to ``results/<suite>``, ``cache_dir`` to
    ``results/.cache``; ``seeds`` replaces the suite's seeds when given. ``threads``: torch
    threads per cell (results depend on it; the default 1 makes tables identical across
    machines and executors). ``force`` recomputes finished cells (and retrains); ``fail_fast``
    stops at the first failing cell. ``executor``: ``local`` or ``ray`` (``address``: an
    existing Ray cluster, else a local instance with ``workers`` CPUs)."""

    out_dir: Path | None = None
    cache_dir: Path | None = None
    device: str = "auto"
    seeds: tuple[int, ...] | None = None
    progress: bool = True
    verbose: bool = False
    threads: int = 1
    amp: bool = False
    force: bool = False
    fail_fast: bool = False
    executor: str = "local"
    address: str | None = None
    workers: int | None = None
    trust_pickle: bool = False
    data_root: str | None = None
    #: another run holds the results folder: wait for it (else refuse)
    wait: bool = False
