"""Suite checks scale linearly with the number of entries (issue 14: 40,000 model entries took
23 s through a quadratic duplicate check). Times ``check_suite`` on suites of n and 4n distinct
model entries and reports the ratio (about 4 when linear, about 16 when quadratic).

    .venv/bin/python benchmarks/suite_checks.py [n]
"""

from __future__ import annotations

import sys
import time

from mmbench.config.suite import parse_suite
from mmbench.plan.cells import check_suite


def seconds(n: int) -> float:
    models = [{"name": "late_fusion", "label": f"m{i}", "params": {"dim": i + 1}} for i in range(n)]
    suite = parse_suite({"name": "big", "datasets": ["mfeat"], "models": models})
    start = time.perf_counter()
    check_suite(suite)
    return time.perf_counter() - start


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    seconds(100)  # warm up the registries
    small, large = seconds(n), seconds(4 * n)
    print(f"check_suite: {n} models {small:.2f}s, {4 * n} models {large:.2f}s, ratio {large / small:.1f} "
          "(linear: about 4)")


if __name__ == "__main__":
    main()
