"""Cost of a full missing-modality sweep against one clean evaluation pass.

All 63 non-empty kept-subsets of mfeat's six views (zeros imputation) for a trained
``late_fusion`` model, evaluated through the harness with encoder reuse (and, as in a run,
per-row outcomes kept for the bootstrap), against one clean pass
over the same test split (naive re-evaluation would cost 63x). Target (issue 4): <= 3x.
Run: ``.venv/bin/python benchmarks/subset_sweep.py``.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

import mmbench
from mmbench.config.suite import Component
from mmbench.data.mfeat import load_mfeat
from mmbench.execution.evaluate import evaluate
from mmbench.metrics.outcomes import Collector
from mmbench.plan.cells import EvalCell, expand_perturbation
from mmbench.train.standard import StandardConfig, StandardRecipe


class _Train:
    dataset, model, recipe, seed = "mfeat", "bench", "standard", 0


def run(model, data, cases) -> float:
    start = time.perf_counter()
    cache: dict = {}
    for case in cases:
        evaluate(model, data.test, EvalCell(_Train(), case, "k", "k"), ("accuracy",),
                 data.n_classes, 512, 0, "bench", cache=cache, collector=Collector())
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--model", default="late_fusion", help="a zoo model with encoders")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (a run's default: 1)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = load_mfeat()
    torch.manual_seed(0)
    model = mmbench.create_model(args.model, data.modalities, data.n_classes)
    StandardRecipe().fit(model, data, StandardConfig(epochs=5), seed=0)
    model.eval()
    sweep = [c for c in expand_perturbation(Component("missing", {"subsets": "all"}), data)
             if c.keep]  # the 63 non-empty kept sets
    clean = expand_perturbation(Component("clean"), data)
    run(model, data, clean), run(model, data, sweep)  # warm-up: allocator, kernels
    pairs = [(run(model, data, clean), run(model, data, sweep)) for _ in range(args.repeat)]
    t_clean = statistics.median(c for c, _ in pairs)  # alternating, so drift hits both alike
    t_sweep = statistics.median(s for _, s in pairs)
    print(f"{args.model} on mfeat test ({len(data.test)} rows), median of {args.repeat}, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"one clean pass: {t_clean * 1000:.1f} ms; all {len(sweep)} subsets: {t_sweep * 1000:.1f} ms")
    print(f"ratio sweep / clean = {t_sweep / t_clean:.2f} (target <= 3; naive ~{len(sweep)})")


if __name__ == "__main__":
    main()
