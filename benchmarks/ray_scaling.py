"""Ray executor scaling: a training-heavy suite with 2 workers vs 1 on a local Ray instance.

Eight models (four zoo models x two seeds) trained on mfeat and evaluated clean, each run with
an empty checkpoint cache and results folder, one cell per worker with one torch thread each
(the default). Wall time of ``run_suite`` includes starting and stopping the Ray instance.
Target (issue 6): 1 worker / 2 workers >= 1.6 on this 2-core machine.
Run: ``.venv/bin/python benchmarks/ray_scaling.py``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from mmbench.config.suite import parse_suite
from mmbench.runner import RunOptions, run_suite

SUITE = {
    "name": "ray-scaling", "datasets": ["mfeat"],
    "models": ["seed_concat", "late_fusion", "gated_fusion", "lowrank_fusion"],
    "recipes": [{"name": "standard", "params": {"epochs": 40, "patience": 100}}],
    "perturbations": ["clean"], "metrics": ["accuracy"], "seeds": [0, 1],
}


def timed(workers: int, root: Path) -> tuple[float, bytes]:
    out = root / f"w{workers}"
    start = time.perf_counter()
    run_suite(parse_suite(dict(SUITE)), RunOptions(out_dir=out, cache_dir=out / "cache", progress=False,
                                                   executor="ray", workers=workers))
    return time.perf_counter() - start, (out / "results.csv").read_bytes()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        one, table_one = timed(1, Path(tmp))
        two, table_two = timed(2, Path(tmp))
    print(f"1 worker: {one:.1f} s; 2 workers: {two:.1f} s; speed-up {one / two:.2f} (target >= 1.6)")
    print(f"identical tables: {table_one == table_two}")


if __name__ == "__main__":
    main()
