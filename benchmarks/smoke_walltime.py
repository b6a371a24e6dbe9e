"""Wall time of the first command's suite (``suites/smoke.yaml``, every robustness family) and
of the clean-only suite (``suites/clean.yaml``), cold (empty checkpoint cache) and warm (every
model cached).

Per suite two measurements, each a cold run with a fresh, empty cache followed by a warm run with
the same cache (and a fresh output folder each time):

* CLI end-to-end: ``python -m mmbench run suites/<suite>.yaml`` in a subprocess, so interpreter
  start-up and ``import torch`` are included; the printed output must be the composite-ranked
  main board (for the smoke suite) with its reading;
* in-process: ``run_suite(...)`` timed inside this interpreter (imports already done).

The script checks that the warm runs trained no model and that the warm ``results.csv`` equals the
cold one byte for byte. Targets (smoke cold under 60 s on 2 cores; clean warm >= 10x faster than
cold) are reported, not asserted: speed belongs here, never in the unit tests. Everything is
written under temporary folders; nothing goes to the repository's ``results/``. ``--tiny`` runs
tiny copies of the two suites instead (first dataset and model, one epoch, only the clean and
random-dropout entries), the smoke one through the CLI only and the clean one in-process only
(each runner's code runs once), and times ``import torch`` once: it only checks that the script
still runs, its figures mean nothing.

    .venv/bin/python benchmarks/smoke_walltime.py [--repeat N] [--json FILE] [--tiny]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
import yaml
from tabulate import tabulate

from mmbench.config.options import RunOptions
from mmbench.runner import run_suite

REPO = Path(__file__).resolve().parents[1]
COLD_TARGET_S = 60.0
RATIO_TARGET = 10.0
Runner = Callable[[Path, Path], tuple[float, int, int]]
#: suite -> what the figures of that suite are checked against ("cold": time, "ratio": cache)
SUITES = {"smoke": "cold", "clean": "ratio"}
#: the perturbations a ``--tiny`` suite keeps (a cheap robustness family: the board is composite-ranked)
TINY_PERTURBATIONS = {"clean", "random_dropout"}


def check(ok: bool, message: str) -> None:
    """An assertion that ``python -O`` does not remove."""
    if not ok:
        raise SystemExit(f"smoke_walltime: {message}")


def entry_name(entry: str | dict) -> str:
    """The component name of a suite entry (a name, or a mapping with ``name``)."""
    return entry if isinstance(entry, str) else entry["name"]


def tiny_copy(suite: str, folder: Path) -> Path:
    """A tiny copy of ``suites/<suite>.yaml`` in ``folder``: its first dataset and model, one
    training epoch, only the perturbations in TINY_PERTURBATIONS."""
    doc = yaml.safe_load((REPO / "suites" / f"{suite}.yaml").read_text())
    kept = [p for p in doc.get("perturbations", ["clean"]) if entry_name(p) in TINY_PERTURBATIONS]
    doc.update(datasets=doc["datasets"][:1], models=doc["models"][:1],
               recipes=[{"name": "standard", "params": {"epochs": 1}}], perturbations=kept)
    path = folder / f"{suite}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def cli_runner(suite: str, path: Path) -> Runner:
    def run_cli(out: Path, cache: Path) -> tuple[float, int, int]:
        """Seconds for one ``mmbench run`` of ``suite`` (its file: ``path``) in a fresh
        interpreter, and the models trained and loaded (read afterwards from results.json)."""
        cmd = [sys.executable, "-m", "mmbench", "run", str(path),
               "--out", str(out), "--cache-dir", str(cache), "-q"]
        start = time.perf_counter()
        printed = subprocess.run(cmd, cwd=REPO, check=True, stdout=subprocess.PIPE, text=True).stdout
        seconds = time.perf_counter() - start
        if suite == "smoke":
            check("Ranked by composite" in printed and "| composite" in printed.replace("  ", " ")
                  and "most robust" in printed, "the smoke suite did not print the composite-ranked board")
        doc = json.loads((out / "results.json").read_text())
        return seconds, doc["models_trained"], doc["models_from_cache"]

    run_cli.__name__ = f"{suite} CLI"
    return run_cli


def inproc_runner(suite: str, path: Path) -> Runner:
    def run_inproc(out: Path, cache: Path) -> tuple[float, int, int]:
        """Seconds for one ``run_suite`` call in this interpreter, and the models trained and loaded."""
        options = RunOptions(out_dir=out, cache_dir=cache, progress=False)
        start = time.perf_counter()
        result = run_suite(path, options)
        seconds = time.perf_counter() - start
        return seconds, result.models_trained, result.models_from_cache

    run_inproc.__name__ = f"{suite} in-process"
    return run_inproc


def cold_warm(runner: Runner) -> tuple[float, float]:
    """One cold run on a fresh cache, then one warm run on the same cache; checked."""
    with tempfile.TemporaryDirectory(prefix="mmbench-bench-") as tmp:
        tmp = Path(tmp)
        cache, cold_out, warm_out = tmp / "cache", tmp / "cold", tmp / "warm"
        cold_s, cold_trained, _ = runner(cold_out, cache)
        warm_s, warm_trained, warm_cached = runner(warm_out, cache)
        name = runner.__name__
        check(cold_trained > 0, f"{name}: the cold run trained no model")
        check(warm_trained == 0, f"{name}: the warm run trained {warm_trained} models (cache keys "
                                 "hash the source: was mmbench edited during the run?)")
        check(warm_cached > 0, f"{name}: the warm run loaded nothing from the cache")
        cold_csv = (cold_out / "results.csv").read_bytes()
        warm_csv = (warm_out / "results.csv").read_bytes()
        check(cold_csv == warm_csv, f"{name}: the warm results.csv differs from the cold one")
    return cold_s, warm_s


def measure(runner: Runner, repeat: int) -> dict[str, object]:
    """``repeat`` cold/warm pairs, each on its own fresh cache; medians and every sample."""
    pairs = [cold_warm(runner) for _ in range(repeat)]
    cold = statistics.median(c for c, _ in pairs)
    warm = statistics.median(w for _, w in pairs)
    return {"cold_s": cold, "warm_s": warm, "ratio": cold / warm,
            "cold_samples": [c for c, _ in pairs], "warm_samples": [w for _, w in pairs]}


def import_floor(repeat: int = 3) -> float:
    """Median seconds for ``python -c 'import torch'``: start-up no cache can remove."""
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import torch"], check=True)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def table(figures: dict[str, dict[str, object]]) -> str:
    """The Markdown table: one row per measurement, with the target its suite is held to."""
    two_cores = "" if os.cpu_count() == 2 else f" ({os.cpu_count()} cores, target is for 2)"
    rows = []
    for label, fig in figures.items():
        if fig["target"] == "cold":
            target = f"cold < {COLD_TARGET_S:.0f} s: " + ("yes" if fig["cold_s"] < COLD_TARGET_S else "no") + two_cores
        else:
            target = f"warm >= {RATIO_TARGET:.0f}x faster: " + ("yes" if fig["ratio"] >= RATIO_TARGET else "no")
        rows.append([label, f"{fig['cold_s']:.1f}", f"{fig['warm_s']:.2f}", f"{fig['ratio']:.1f}x", target])
    return tabulate(rows, headers=["measurement", "cold s", "warm s", "cold/warm", "target"], tablefmt="github")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1, metavar="N",
                        help="cold/warm pairs per measurement, each on a fresh cache (median)")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the figures to this JSON file")
    parser.add_argument("--tiny", action="store_true", help="tiny copies of the suites: checks the script runs")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    return args


def runners(suite: str, path: Path, tiny: bool) -> list[Runner]:
    """The CLI and the in-process runner; tiny, one each (smoke: the CLI, clean: in-process)."""
    both = [cli_runner(suite, path), inproc_runner(suite, path)]
    if not tiny:
        return both
    return both[:1] if suite == "smoke" else both[1:]


def measure_all(folder: Path | None, repeat: int) -> dict[str, dict[str, object]]:
    """Every measurement of every suite: the real suite files, or tiny copies in ``folder``."""
    figures = {}
    for suite, target in SUITES.items():
        path = REPO / "suites" / f"{suite}.yaml" if folder is None else tiny_copy(suite, folder)
        for runner in runners(suite, path, folder is not None):
            figures[runner.__name__] = {**measure(runner, repeat), "target": target}
    return figures


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="mmbench-tiny-") as tmp:
        figures = measure_all(Path(tmp) if args.tiny else None, args.repeat)
    info = {"date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "cpu_count": os.cpu_count(), "torch": torch.__version__,
            "python": sys.version.split()[0], "repeat": args.repeat, "tiny": args.tiny,
            "python_import_torch_s": import_floor(1 if args.tiny else 3),
            "load_1min_before": load_before, "load_1min_after": os.getloadavg()[0]}
    print(table(figures))
    print()
    for key, value in info.items():
        print(f"{key}: {value:.2f}" if isinstance(value, float) else f"{key}: {value}")
    if args.json:
        args.json.write_text(json.dumps({**info, "figures": figures}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
