"""Result files: ``results.csv`` (tidy rows) and ``results.json`` (rows + provenance).

``results.json`` schema (version 2: rows carry ``split``, ``rows`` and their perturbation's
fact columns such as ``attack``, ``norm``, ``imputation``, ``kept``, ``corruption``, ``draws``)::

    {"schema_version": 1, "suite": str, "config": <suite as a mapping>,
     "rows": [<tidy row>, ...], "versions": {package: version}, "git": str | null,
     "device": str, "timings": {"train": {cell: s}, "eval": {cell: s}, "total": s},
     "models_trained": int, "models_from_cache": int,
     "sanity": [{"dataset", "model", "recipe", "seed", "check", "perturbation", "target",
                 "passed", "detail"}, ...]}
"""

from __future__ import annotations

import json
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd

from mmbench.store.folders import write_atomic, write_text_atomic
from mmbench.store.rows import columns_of, frame_records

SCHEMA_VERSION = 2
PACKAGES = ("mmbench", "torch", "torchattacks", "numpy", "pandas", "scikit-learn", "tabulate")


def package_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def git_hash(cwd: Path | None = None) -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True,
                             text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


#: a text cell starting with one of these is a formula to a spreadsheet; it is written with a
#: leading ``'`` (as is a cell that itself starts with ``'``), which :func:`read_csv` removes
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "'")


def neutralise(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with every text cell that a spreadsheet would execute prefixed by ``'``."""
    def escape(value: Any) -> Any:
        return f"'{value}" if isinstance(value, str) and value.startswith(FORMULA_STARTS) else value

    text = [c for c in frame.columns if _is_text(frame[c])]
    return frame.assign(**{c: frame[c].map(escape) for c in text}) if text else frame


def _is_text(column: pd.Series) -> bool:
    return pd.api.types.is_object_dtype(column) or pd.api.types.is_string_dtype(column)


def write_csv(frame: pd.DataFrame, path: Path) -> Path:
    """A CSV export with formula-like text cells neutralised (read it back with :func:`read_csv`)."""
    return write_atomic(path, lambda tmp: neutralise(frame).to_csv(tmp, index=False))


def read_csv(path: Path) -> pd.DataFrame:
    """A CSV written by :func:`write_csv`, exactly as it was before neutralising."""
    frame = pd.read_csv(path, keep_default_na=False, na_values=[""])
    for column in [c for c in frame.columns if _is_text(frame[c])]:
        frame[column] = frame[column].map(lambda v: v[1:] if isinstance(v, str) and v.startswith("'") else v)
    return frame


def write_results(out_dir: Path, frame: pd.DataFrame, provenance: dict[str, Any]) -> dict[str, Path]:
    """Write the CSV and JSON files; return their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    csv_path, json_path = out_dir / "results.csv", out_dir / "results.json"
    frame = frame[columns_of(frame)]  # tidy columns only (no store keys)
    write_csv(frame, csv_path)
    doc = {"schema_version": SCHEMA_VERSION, **provenance, "rows": frame_records(frame)}
    write_text_atomic(json_path, json.dumps(doc, indent=2, default=str) + "\n")
    return {"csv": csv_path, "json": json_path}
