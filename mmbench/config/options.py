"""How a suite is run: ``RunOptions``, the flat options a user gives (keywords of ``mmbench.run``,
flags of ``mmbench run``), resolved at the top into what each stage reads: ``DataOptions`` (loading
datasets, in the runner and in Ray workers) and ``ExecOptions`` (executing cells)."""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class DataOptions:
    """How datasets are loaded. ``trust_pickle``: allow datasets stored as pickles (they can run
    code when loaded); ``data_root``: root of user-supplied data files (default ``$MMBENCH_DATA``)."""

    trust_pickle: bool = False
    data_root: str | None = None


@dataclass(frozen=True)
class ExecOptions:
    """How cells are executed. ``threads``: torch threads per cell; ``amp``: bfloat16 for training
    and clean evaluation; ``force``: recompute finished cells and retrain; ``fail_fast``: stop at
    the first failing cell; ``progress``: a bar over cells; ``verbose``: bars inside each cell."""

    threads: int = 1
    amp: bool = False
    force: bool = False
    fail_fast: bool = False
    progress: bool = True
    verbose: bool = False


@dataclass(frozen=True)
class RunOptions:
    """How to run a suite (every field is a keyword of ``mmbench.run`` and a flag of ``mmbench run``).

    Where results go: ``out_dir`` (``--out``; default ``results/<suite>``), ``cache_dir``
    (``--cache-dir``; default ``results/.cache/checkpoints``), ``summary`` (``--summary``: a file
    the leaderboard's Markdown is appended to, e.g. ``$GITHUB_STEP_SUMMARY``; checked writable
    before anything runs), ``wait``: when another run holds the results folder, wait for it (else
    refuse).

    Preparation (``mmbench validate`` takes these too): ``device`` (``auto``: CUDA when
    available, ``cpu``, ``cuda``, ``cuda:N``); ``seeds`` replaces the suite's training seeds when
    given; ``executor``: ``local`` or ``ray`` (``address``: an existing Ray cluster, else a local
    instance with ``workers`` CPUs); ``trust_pickle`` and ``data_root``: see :class:`DataOptions`.

    Execution (see :class:`ExecOptions`): ``threads``: torch threads per cell (results depend on
    it; the default 1 makes tables identical across machines and executors); ``amp``: mixed
    precision (part of the cells' keys); ``force`` recomputes finished cells (and retrains);
    ``fail_fast`` stops at the first failing cell; ``progress`` and ``verbose``: progress bars
    over cells and inside each cell."""

    out_dir: Path | None = None
    cache_dir: Path | None = None
    summary: Path | None = None
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
    wait: bool = False

    def __post_init__(self) -> None:
        if self.seeds is not None and not isinstance(self.seeds, tuple):
            object.__setattr__(self, "seeds", tuple(self.seeds))

    @classmethod
    def from_args(cls, namespace: Any, **overrides: Any) -> RunOptions:
        """The options an argparse namespace holds (its attributes named as fields; the others,
        and fields it lacks, are left out), ``overrides`` replacing them."""
        given = {f.name: getattr(namespace, f.name) for f in fields(cls) if hasattr(namespace, f.name)}
        return cls(**{**given, **overrides})

    @property
    def data(self) -> DataOptions:
        """What loading the datasets reads."""
        return DataOptions(self.trust_pickle, self.data_root)

    @property
    def execution(self) -> ExecOptions:
        """What executing the cells reads."""
        return ExecOptions(self.threads, self.amp, self.force, self.fail_fast, self.progress, self.verbose)
