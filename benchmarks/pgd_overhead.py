"""Harness overhead of an attack: mmbench's PGD-10 on one modality of a fusion model against a
bare torchattacks closure over the other modalities, same model, data and seed, in one run.

Target (issue 3): harness / bare <= 1.10. ``--tiny`` (1 run each, 1 training epoch, 32 test
rows) only checks that the script still runs.

    .venv/bin/python benchmarks/pgd_overhead.py [--repeat N] [--epochs N] [--rows N] [--tiny]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torchattacks
from tabulate import tabulate

import mmbench
from mmbench.data.base import MultimodalDataset
from mmbench.data.mfeat import load_mfeat
from mmbench.perturb.adversarial import adversarial
from mmbench.train.standard import StandardConfig, StandardRecipe

EPS, STEPS, TARGET = 0.05, 10, "pix"


def trained_model(epochs: int) -> tuple[torch.nn.Module, MultimodalDataset]:
    data = load_mfeat()
    torch.manual_seed(0)
    model = mmbench.create_model("late_fusion", data.modalities, data.n_classes)
    StandardRecipe().fit(model, data, StandardConfig(epochs=epochs), seed=0)
    return model.eval(), data


class Closure(torch.nn.Module):
    """What a user writes by hand: the target from the attack, the rest closed over."""

    def __init__(self, model, batch, spec) -> None:
        super().__init__()
        self.model, self.batch, self.spec = model, batch, spec

    def forward(self, x):
        return self.model({**self.batch, TARGET: self.spec.from_unit(x)})


def bare(model, data, batch, labels) -> float:
    spec = data.spec(TARGET)
    attack = torchattacks.PGD(Closure(model, batch, spec), eps=EPS, alpha=2.5 * EPS / STEPS, steps=STEPS)
    torch.manual_seed(0)
    adv = attack(spec.to_unit(batch[TARGET]), labels)
    return float((model({**batch, TARGET: spec.from_unit(adv)}).argmax(1) == labels).float().mean())


def harness(model, data, batch, labels) -> float:
    (case,) = adversarial(data.modalities, data.n_classes, attacks=["pgd"], eps=[EPS],
                          targets=[TARGET], options={"pgd": {"steps": STEPS}})
    out = case.apply(model, batch, labels, seed=0)
    return float((model(out).argmax(1) == labels).float().mean())


def timed(fn, *args) -> tuple[float, float]:
    start = time.perf_counter()
    value = fn(*args)
    return time.perf_counter() - start, value


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15, help="timed runs of each (alternating)")
    parser.add_argument("--epochs", type=int, default=10, help="training epochs (default 10)")
    parser.add_argument("--rows", type=int, default=None, help="first N test rows (default: all)")
    parser.add_argument("--tiny", action="store_true", help="1 run each, 1 epoch, 32 rows: checks the script runs")
    args = parser.parse_args(argv)
    if args.tiny:
        args.repeat, args.epochs, args.rows = 1, 1, 32
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    model, data = trained_model(args.epochs)
    batch, labels = data.test.rows(slice(args.rows))
    times: dict[str, list[float]] = {"bare torchattacks closure": [], "mmbench harness": []}
    accs = {}
    for _ in range(args.repeat):
        for name, fn in (("bare torchattacks closure", bare), ("mmbench harness", harness)):
            seconds, accs[name] = timed(fn, model, data, batch, labels)
            times[name].append(seconds)
    medians = {k: statistics.median(v) for k, v in times.items()}
    ratio = medians["mmbench harness"] / medians["bare torchattacks closure"]
    rows = [[k, f"{medians[k] * 1000:.1f}", f"{accs[k]:.4f}"] for k in times]
    print(f"PGD-{STEPS}, eps={EPS} on '{TARGET}' of late_fusion, mfeat test split ({len(labels)} rows), "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads, median of {args.repeat}")
    print(tabulate(rows, headers=["", "median ms", "robust accuracy"], tablefmt="github"))
    print(f"\nratio harness / bare = {ratio:.3f} (target <= 1.10)")


if __name__ == "__main__":
    main()
