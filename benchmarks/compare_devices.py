"""Compare the results of the same suite run on two devices (``gpu_check.sh``).

Models trained on different devices differ in floating-point rounding, so values are not
identical; this reports the largest differences per family and fails (exit 1) when a clean
accuracy differs by more than ``--tolerance`` or when a row exists on one device only. Rows
are matched on results.csv's sort keys and their order among rows of equal keys (cells that
differ only in a perturbation fact, such as compound stages or smoothing radii, share the keys;
the store writes them in plan order). Each argument is a results folder or its ``results.csv``.
It needs no GPU itself: any two results of one suite compare (``tests/test_benchmarks.py``
compares two tiny CPU runs).

    .venv/bin/python benchmarks/compare_devices.py REFERENCE OTHER [--tolerance T]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from mmbench.store.exports import read_csv
from mmbench.store.rows import SORT_KEYS

KEY = [*SORT_KEYS, "occurrence"]


def values(path: Path) -> pd.Series:
    """The ``value`` column of a results folder's ``results.csv`` (or of that file), by KEY."""
    frame = read_csv(path / "results.csv" if path.is_dir() else path)
    frame["occurrence"] = frame.groupby(SORT_KEYS, dropna=False, sort=False).cumcount()
    return frame.set_index(KEY)["value"]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reference", type=Path, help="results folder (or results.csv) of the CPU run")
    parser.add_argument("other", type=Path, help="results folder (or results.csv) of the CUDA run")
    parser.add_argument("--tolerance", type=float, default=0.03)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    a, b = values(args.reference), values(args.other)
    missing = a.index.symmetric_difference(b.index)
    diff = (a - b.reindex(a.index)).abs().rename("abs_diff").reset_index()
    print(f"{len(a)} rows compared; rows on one device only: {len(missing)}")
    print(diff.groupby(["family", "metric"])["abs_diff"].agg(["mean", "max"]).to_string())
    clean = diff[(diff["family"] == "clean") & (diff["metric"] == "accuracy")]
    worst = float(clean["abs_diff"].max()) if len(clean) else 0.0
    print(f"largest clean-accuracy difference: {worst:.4f} (tolerance {args.tolerance})")
    return 0 if worst <= args.tolerance and len(missing) == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
