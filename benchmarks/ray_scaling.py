"""Ray executor scaling: a training-heavy suite with 2 workers vs 1 on a local Ray instance.

Eight models (four zoo models x two seeds) trained on mfeat for 40 epochs and evaluated clean,
each run with an empty checkpoint cache and results folder, one cell per worker with one torch
thread each (the default). Wall time of ``run_suite`` includes starting and stopping the Ray
instance; the two runs must give byte-identical tables. Target (issue 6): 1 worker / 2 workers
>= 1.6 on this 2-core machine. ``--tiny`` (one model, one seed, one epoch; Ray start-up
dominates) only checks that the script still runs.

    .venv/bin/python benchmarks/ray_scaling.py [--tiny]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from mmbench.config.options import RunOptions
from mmbench.config.suite import Suite, parse_suite
from mmbench.runner import run_suite

MODELS = ["seed_concat", "late_fusion", "gated_fusion", "lowrank_fusion"]


def suite(models: list[str], seeds: list[int], epochs: int) -> Suite:
    return parse_suite({
        "name": "ray-scaling", "datasets": ["mfeat"], "models": models,
        "recipes": [{"name": "standard", "params": {"epochs": epochs, "patience": 100}}],
        "perturbations": ["clean"], "metrics": ["accuracy"], "seeds": seeds,
    })


def timed(plan: Suite, workers: int, root: Path) -> tuple[float, bytes]:
    out = root / f"w{workers}"
    start = time.perf_counter()
    run_suite(plan, RunOptions(out_dir=out, cache_dir=out / "cache", progress=False,
                               executor="ray", workers=workers))
    return time.perf_counter() - start, (out / "results.csv").read_bytes()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="1 model, 1 seed, 1 epoch: checks the script runs")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    tiny = parse_args(argv).tiny
    plan = suite(MODELS[1:2], [0], 1) if tiny else suite(MODELS, [0, 1], 40)
    with tempfile.TemporaryDirectory() as tmp:
        one, table_one = timed(plan, 1, Path(tmp))
        two, table_two = timed(plan, 2, Path(tmp))
    print(f"1 worker: {one:.1f} s; 2 workers: {two:.1f} s; speed-up {one / two:.2f} (target >= 1.6)")
    print(f"identical tables: {table_one == table_two}")


if __name__ == "__main__":
    main()
