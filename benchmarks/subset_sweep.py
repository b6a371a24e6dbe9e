"""Cost of a full missing-modality sweep against one clean evaluation pass.

All 63 non-empty kept-subsets of mfeat's six views (zeros imputation) for a trained
``late_fusion`` model, evaluated as a run evaluates them: ``evaluate`` with one ``shared`` dict
for the model's cells (encoder reuse), one torch thread, and each cell's per-row outcomes laid
out for the bootstrap; against one clean pass over the same test split (naive re-evaluation
would cost 63x). Clean and sweep runs alternate, so drift hits both alike. Target (issue 4):
<= 3x. ``--tiny`` (1 run, 1 training epoch) only checks that the script still runs.

    .venv/bin/python benchmarks/subset_sweep.py [--repeat N] [--model NAME] [--threads N] [--tiny]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

import mmbench
from mmbench.config.suite import Component
from mmbench.data.base import MultimodalDataset
from mmbench.data.mfeat import load_mfeat
from mmbench.execution.evaluate import EvalSettings, evaluate
from mmbench.metrics.outcomes import SampleSet
from mmbench.perturb.base import Perturbation
from mmbench.plan.cells import expand_perturbation
from mmbench.train.standard import StandardConfig, StandardRecipe

SETTINGS = EvalSettings(batch_size=512, seed=0)  # a suite's default batch size, no progress bar
ROWS = SampleSet("mfeat", "test")


def trained_model(name: str, data: MultimodalDataset, epochs: int) -> torch.nn.Module:
    torch.manual_seed(0)
    model = mmbench.create_model(name, data.modalities, data.n_classes)
    StandardRecipe().fit(model, data, StandardConfig(epochs=epochs), seed=0)
    return model.eval()


def run(model: torch.nn.Module, data: MultimodalDataset, cases: list[Perturbation]) -> float:
    """Seconds to evaluate ``cases`` one after another, sharing reused work as a run does."""
    start = time.perf_counter()
    shared: dict = {}
    for case in cases:
        evaluate(model, data.test, case, SETTINGS, shared).samples(ROWS)
    return time.perf_counter() - start


def kept_subsets(data: MultimodalDataset) -> list[Perturbation]:
    """The 63 non-empty kept sets of the six views, zeros imputation (the default)."""
    cases = expand_perturbation(Component("missing", {"subsets": "all", "imputation": ["zeros"]}), data)
    return [c for c in cases if c.keep]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=21, help="timed clean/sweep pairs (median; default 21)")
    parser.add_argument("--model", default="late_fusion", help="a zoo model with encoders")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (a run's default: 1)")
    parser.add_argument("--epochs", type=int, default=5, help="training epochs (default 5)")
    parser.add_argument("--tiny", action="store_true", help="1 pair, 1 epoch: checks the script runs")
    args = parser.parse_args(argv)
    if args.tiny:
        args.repeat, args.epochs = 1, 1
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    data = load_mfeat()
    model = trained_model(args.model, data, args.epochs)
    sweep, clean = kept_subsets(data), expand_perturbation(Component("clean"), data)
    run(model, data, clean), run(model, data, sweep)  # warm-up: allocator, kernels
    pairs = [(run(model, data, clean), run(model, data, sweep)) for _ in range(args.repeat)]
    t_clean = statistics.median(c for c, _ in pairs)
    t_sweep = statistics.median(s for _, s in pairs)
    print(f"{args.model} on mfeat test ({len(data.test)} rows), median of {args.repeat}, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"one clean pass: {t_clean * 1000:.1f} ms; all {len(sweep)} subsets: {t_sweep * 1000:.1f} ms")
    print(f"ratio sweep / clean = {t_sweep / t_clean:.2f} (target <= 3; naive ~{len(sweep)})")


if __name__ == "__main__":
    main()
