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
written under temporary folders; nothing goes to the repository's ``results/``.

    .venv/bin/python benchmarks/smoke_walltime.py [--repeat N] [--json FILE]
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
from tabulate import tabulate

from mmbench.runner import RunOptions, run_suite

REPO = Path(__file__).resolve().parents[1]
COLD_TARGET_S = 60.0
RATIO_TARGET = 10.0
Runner = Callable[[Path, Path], tuple[float, int, int]]
#: suite -> what the figures of that suite are checked against ("cold": time, "ratio": cache)
SUITES = {"smoke": "cold", "clean": "ratio"}


def check(ok: bool, message: str) -> None:
    """An assertion that ``python -O`` does not remove."""
    if not ok:
        raise SystemExit(f"smoke_walltime: {message}")


def cli_runner(suite: str) -> Runner:
    def run_cli(out: Path, cache: Path) -> tuple[float, int, int]:
        """Seconds for one ``mmbench run`` of ``suite`` in a fresh interpreter, and the models
        trained and loaded (read afterwards from results.json)."""
        cmd = [sys.executable, "-m", "mmbench", "run", f"suites/{suite}.yaml",
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


def inproc_runner(suite: str) -> Runner:
    def run_inproc(out: Path, cache: Path) -> tuple[float, int, int]:
        """Seconds for one ``run_suite`` call in this interpreter, and the models trained and loaded."""
        options = RunOptions(out_dir=out, cache_dir=cache, progress=False)
        start = time.perf_counter()
        result = run_suite(REPO / "suites" / f"{suite}.yaml", options)
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


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1, metavar="N",
                        help="cold/warm pairs per measurement, each on a fresh cache (median)")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the figures to this JSON file")
    args = parser.parse_args()
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    return args


def main() -> int:
    args = parse_args()
    load_before = os.getloadavg()[0]
    figures = {}
    for suite, target in SUITES.items():
        for runner in (cli_runner(suite), inproc_runner(suite)):
            figures[runner.__name__] = {**measure(runner, args.repeat), "target": target}
    info = {"date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "cpu_count": os.cpu_count(), "torch": torch.__version__,
            "python": sys.version.split()[0], "repeat": args.repeat,
            "python_import_torch_s": import_floor(),
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
