"""Compare two results.csv files of the same suite run on two devices (``gpu_check.sh``).

Models trained on different devices differ in floating-point rounding, so values are not
identical; this reports the largest differences per family and fails (exit 1) when a clean
accuracy differs by more than ``--tolerance`` or when a row exists on one device only.
"""

from __future__ import annotations

import argparse
import sys

import pandas as pd

KEY = ["dataset", "model", "recipe", "seed", "family", "perturbation", "target", "severity", "metric"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reference", help="results.csv of the CPU run")
    parser.add_argument("other", help="results.csv of the CUDA run")
    parser.add_argument("--tolerance", type=float, default=0.03)
    args = parser.parse_args()
    a, b = (pd.read_csv(p).set_index(KEY)["value"] for p in (args.reference, args.other))
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
