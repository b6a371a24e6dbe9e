"""What the last publish of a results folder depended on and wrote, kept in its store's meta.

A publish reads the done evaluation cells of the plan, the suite's configuration (how to read
them), what the store knows about each dataset, and runs code: mmbench's publishing modules,
every family and the metrics (source hashes as in :mod:`mmbench.plan.sources`), with the
installed package versions. Its :class:`Stamp` hashes all of that and the folder (the printed
summary names it). A run whose cells were all in the store keeps the files when the stamp is
the one recorded and every file is still as written (size and modification time), and prints
the recorded summary; ``mmbench report`` always re-renders. Each metric's own code hash is
kept too, so a publish can say which metric's rows an edit recomputed.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd

from mmbench.families.scoring import families
from mmbench.hashing import content_hash
from mmbench.plan.sources import OWN, dependencies, file_hash, origin_modules, source_file
from mmbench.registry import METRICS
from mmbench.report.analysis import Reading
from mmbench.store.database import Store
from mmbench.store.exports import package_versions

log = logging.getLogger(__name__)

META = "published"
#: the modules that turn stored cells into files (their mmbench imports are followed)
PUBLISHING = ("mmbench.report.publish",)
ASSETS = Path(__file__).resolve().parent / "assets"


@dataclass(frozen=True)
class Stamp:
    """What a publish depends on: one ``fingerprint``, and each metric's code hash."""

    fingerprint: str
    metrics: dict[str, str]

    @classmethod
    def of(cls, store: Store, keys: Iterable[str], folder: Path) -> Stamp:
        """The stamp of publishing the done evaluation cells ``keys`` of ``store`` into ``folder``."""
        config = store.config() or {}
        reading = Reading.from_config(config)
        metrics = metric_versions(dict.fromkeys((*reading.metrics, reading.score_metric)))
        parts = {"keys": sorted(keys), "config": config, "datasets": store.meta("datasets") or {},
                 "code": publishing_code(), "metrics": metrics, "versions": package_versions(),
                 "folder": [str(folder), str(folder.resolve())]}  # the summary names it as given
        return cls(content_hash(parts), metrics)


@dataclass(frozen=True)
class Publication:
    """A recorded publish: its stamp, the files it wrote (``name -> path``), the size and
    modification time of each of them and of every plot, and the summary a run printed."""

    fingerprint: str
    metrics: dict[str, str]
    files: dict[str, str]
    written: dict[str, list[int]] = field(default_factory=dict)
    summary: str = ""

    @classmethod
    def read(cls, store: Store) -> Publication | None:
        raw = store.meta(META)
        try:
            return cls(**raw) if isinstance(raw, dict) else None
        except TypeError:  # recorded by another mmbench: as if none
            return None

    def unchanged(self, stamp: Stamp) -> bool:
        """Recorded with this stamp, and every file it wrote is still as written."""
        return self.fingerprint == stamp.fingerprint and bool(self.written) and all(
            _written(Path(path)) == stat for path, stat in self.written.items())


def record(store: Store, stamp: Stamp, files: dict[str, Path], plots: Sequence[Path], summary: str) -> None:
    """Keep what this publish depended on and wrote in ``store``."""
    written = {str(p): _written(p) for p in [*files.values(), *plots]}
    done = Publication(stamp.fingerprint, stamp.metrics, {k: str(p) for k, p in files.items()},
                       {p: s for p, s in written.items() if s}, summary)
    store.set_meta(META, asdict(done))


def log_metric_changes(before: Publication | None, stamp: Stamp, frame: pd.DataFrame) -> None:
    """Name each metric whose code changed, or that is new, since the last publish recorded
    (nothing on a first publish): its rows were just computed from the stored outcomes."""
    if before is None:
        return
    counts = frame["metric"].value_counts() if len(frame) else pd.Series(dtype=int)
    for name, version in stamp.metrics.items():
        rows = int(counts.get(name, 0))
        if name not in before.metrics:
            log.info("metric '%s' is new since the last publish: its %d rows computed from stored "
                     "outcomes", name, rows)
        elif before.metrics[name] != version:
            log.info("metric '%s' changed since the last publish: its %d rows recomputed from "
                     "stored outcomes", name, rows)


def metric_versions(names: Iterable[str]) -> dict[str, str]:
    """Metric name -> a hash of its module and what that imports of mmbench or of its own
    package (a plugin's other modules are left out unless imported)."""
    out = {}
    for name in names:
        module = METRICS.get(name).__module__
        top = module.split(".")[0]
        others = frozenset(origin_modules(top)) - {module} if top != OWN else frozenset()
        out[name] = content_hash(_hashes(dependencies(module, others)))
    return out


def publishing_code() -> dict[str, str]:
    """Module -> source hash of the publishing code and every family (a plugin family's whole
    package), and of the report page's assets."""
    modules = set(PUBLISHING) | {type(f).__module__ for f in families()}
    found = sorted({m for name in modules for m in dependencies(name)})
    assets = {f"assets/{p.name}": file_hash(p) for p in sorted(ASSETS.iterdir()) if p.is_file()}
    return {**_hashes(found), **assets}


def _hashes(modules: Iterable[str]) -> dict[str, str]:
    return {m: file_hash(path) for m in modules if (path := source_file(m)) is not None}


def _written(path: Path) -> list[int]:
    """[size, modification time in ns], or [] for a file that is not there."""
    try:
        stat = path.stat()
    except OSError:
        return []
    return [stat.st_size, stat.st_mtime_ns]

