"""An input mistake in a suite file is reported in under a second (issue 22, point 10): times
``mmbench validate`` on a suite with an unknown top-level key and on one with malformed YAML,
end to end through the CLI, against ``python -c pass`` (the interpreter's own start-up) as the
baseline. Reports the median of N runs and the ratio to the 1 s target (below 1: met).
``--tiny`` (1 run each) only checks that the script still runs.

    .venv/bin/python benchmarks/error_latency.py [--repeat N] [--tiny]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_S = 1.0

SUITES = {
    "unknown key": "name: bad\ndatasets: [mfeat]\nmodels: [late_fusion]\nbogus: 1\n",
    "malformed YAML": "name: bad\ndatasets: [mfeat\nmodels: [late_fusion]\n",
}


def seconds(command: list[str], repeat: int, expected: int) -> float:
    """Median wall time of ``command`` over ``repeat`` runs; each must exit with ``expected``."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        out = subprocess.run(command, capture_output=True, text=True)
        times.append(time.perf_counter() - start)
        if out.returncode != expected:
            raise SystemExit(f"{' '.join(command)} exited {out.returncode}, not {expected}: {out.stderr[-300:]}")
    return statistics.median(times)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7, help="runs per measurement (median; default 7)")
    parser.add_argument("--tiny", action="store_true", help="1 run each: checks the script runs")
    args = parser.parse_args(argv)
    if args.tiny:
        args.repeat = 1
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    baseline = seconds([sys.executable, "-c", "pass"], args.repeat, 0)
    print(f"python -c pass: {baseline:.3f} s (interpreter start-up, the floor)")
    with tempfile.TemporaryDirectory() as folder:
        for case, text in SUITES.items():
            suite = Path(folder) / "bad.yaml"
            suite.write_text(text)
            median = seconds([sys.executable, "-m", "mmbench", "validate", str(suite)], args.repeat, 2)
            verdict = "met" if median < TARGET_S else "NOT met"
            print(f"mmbench validate, {case}: {median:.3f} s median of {args.repeat}; "
                  f"{median / TARGET_S:.2f} of the {TARGET_S:g} s target ({verdict}); "
                  f"{median - baseline:.3f} s above start-up")


if __name__ == "__main__":
    main()
