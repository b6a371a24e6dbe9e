"""Suite checks scale linearly with the number of entries (issue 14: 40,000 model entries took
23 s through a quadratic duplicate check). Times ``check_suite`` on suites of n and 4n distinct
model entries and reports the ratio (about 4 when linear, about 16 when quadratic). ``--tiny``
(n = 100) only checks that the script still runs.

    .venv/bin/python benchmarks/suite_checks.py [n] [--tiny]
"""

from __future__ import annotations

import argparse
import time

from mmbench.config.checks import check_suite
from mmbench.config.suite import parse_suite


def seconds(n: int) -> float:
    models = [{"name": "late_fusion", "label": f"m{i}", "params": {"dim": i + 1}} for i in range(n)]
    suite = parse_suite({"name": "big", "datasets": ["mfeat"], "models": models})
    start = time.perf_counter()
    check_suite(suite)
    return time.perf_counter() - start


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", type=int, nargs="?", default=10_000, help="model entries of the small suite (default 10000)")
    parser.add_argument("--tiny", action="store_true", help="n = 100: checks the script runs")
    args = parser.parse_args(argv)
    if args.tiny:
        args.n = 100
    return args


def main(argv: list[str] | None = None) -> None:
    n = parse_args(argv).n
    seconds(100)  # warm up the registries
    small, large = seconds(n), seconds(4 * n)
    print(f"check_suite: {n} models {small:.2f}s, {4 * n} models {large:.2f}s, ratio {large / small:.1f} "
          "(linear: about 4)")


if __name__ == "__main__":
    main()
