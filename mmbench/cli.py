"""The command line: thin parsing on top of the public API.

Every user error is one line on stderr and exit status 2; ``--debug`` shows tracebacks.
"""

from __future__ import annotations

import argparse
import logging
import os
import sqlite3
import sys
from collections.abc import Sequence
from pathlib import Path

from mmbench.errors import MMBenchError
from mmbench.version import __version__

log = logging.getLogger("mmbench")
KINDS = ("models", "datasets", "perturbations", "corruptions", "metrics", "recipes", "families", "attacks")


def _common() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    common.add_argument("-q", "--quiet", action="store_true",
                        help="only warnings and the result, no progress bars")
    common.add_argument("-v", "--verbose", action="store_true",
                        help="also a progress bar inside each cell (training epochs, batches)")
    common.add_argument("--no-plugins", action="store_true",
                        help="load no third-party plugins from entry points (as MMBENCH_NO_PLUGINS=1)")
    return common


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mmbench", description="Robustness benchmarks for multimodal fusion models."
    )
    parser.add_argument("--version", action="version", version=f"mmbench {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    common = _common()

    run = sub.add_parser("run", parents=[common], help="run a suite and print its leaderboard")
    run.add_argument("suite", type=Path, help="suite YAML file, e.g. suites/smoke.yaml")
    run.add_argument("--out", type=Path, help="results folder (default: results/<suite name>)")
    run.add_argument("--cache-dir", type=Path,
                     help="checkpoint cache folder (default: results/.cache/checkpoints)")
    run.add_argument("--device", default="auto",
                     help="auto (CUDA when available), cpu or cuda (default: auto)")
    run.add_argument("--seeds", type=int, nargs="+", help="training seeds, replacing the suite's")
    _run_options(run)
    _summary_option(run)
    run.set_defaults(func=cmd_run)

    folders = {  # commands on results folders: (help, folder arguments, --summary, function)
        "report": ("re-render a results folder's files and boards from its store",
                   {"results": "a results folder, e.g. results/smoke"}, True, cmd_report),
        "compare": ("paired differences of every score between two results folders",
                    {"a": "results folder A", "b": "results folder B (same datasets and splits)"},
                    True, cmd_compare),
        "status": ("done / pending / failed cells of a results folder",
                   {"results": "a results folder, e.g. results/smoke"}, False, cmd_status),
        "repair": ("copy every readable cell of a damaged store into a fresh one (the rerun "
                   "computes only what was lost)",
                   {"results": "a results folder, e.g. results/smoke"}, False, cmd_repair),
    }
    for name, (text, arguments, summary, func) in folders.items():
        command = sub.add_parser(name, parents=[common], help=text)
        for argument, argument_help in arguments.items():
            command.add_argument(argument, type=Path, help=argument_help)
        if summary:
            _summary_option(command)
        command.set_defaults(func=func)

    ls = sub.add_parser("ls", parents=[common],
                        help="list registered components (or the attack catalogue)")
    ls.add_argument("kind", choices=KINDS)
    ls.add_argument("pattern", nargs="?", help="shell-style filter, e.g. '*fusion'")
    ls.set_defaults(func=cmd_ls)

    validate = sub.add_parser("validate", parents=[common], help="check a suite without running it")
    validate.add_argument("suite", type=Path)
    _trust_option(validate)
    validate.set_defaults(func=cmd_validate)
    return parser


def _summary_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--summary", type=Path, metavar="FILE",
                        help="also append the Markdown boards to FILE (e.g. $GITHUB_STEP_SUMMARY)")


def _append_summary(path: Path | None, board: str) -> None:
    if path is not None:
        with path.open("a", encoding="utf-8") as handle:
            handle.write(board + "\n")


def _run_options(run: argparse.ArgumentParser) -> None:
    run.add_argument("--force", action="store_true",
                     help="recompute finished cells and retrain (default: resume, skipping them)")
    run.add_argument("--fail-fast", action="store_true",
                     help="stop at the first failing cell (default: record it and go on)")
    run.add_argument("--threads", type=int, default=1,
                     help="torch threads per cell (default 1: identical tables on any machine)")
    run.add_argument("--amp", action="store_true",
                     help="mixed precision (bfloat16) for training and clean evaluation only")
    run.add_argument("--executor", choices=("local", "ray"), default="local",
                     help="local (in-process, serial; default) or ray (needs the 'ray' extra)")
    run.add_argument("--address", help="Ray cluster address (default: start a local instance)")
    run.add_argument("--workers", type=int,
                     help="CPUs of the local Ray instance (default: all cores)")
    run.add_argument("--wait", action="store_true",
                     help="when another run is writing the same results folder, wait for it "
                          "(default: refuse)")
    _trust_option(run)


def _trust_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--trust-pickle", action="store_true",
                        help="allow datasets stored as pickles (they can run code when loaded)")
    parser.add_argument("--data-dir", metavar="ROOT",
                        help="root of user-supplied data files (avmnist/, mosi_raw.pkl, ...; "
                             "default: $MMBENCH_DATA)")


def cmd_run(args: argparse.Namespace) -> int:
    from mmbench.config.options import RunOptions
    from mmbench.config.suite import load_suite

    suite = load_suite(args.suite)  # torch-free: a mistake in the file is reported at once
    from mmbench.runner import run_suite
    from mmbench.store.folders import writable_file

    options = RunOptions(out_dir=args.out, cache_dir=args.cache_dir, device=args.device,
                         seeds=tuple(args.seeds) if args.seeds else None,
                         progress=not args.quiet and sys.stderr.isatty(),
                         verbose=args.verbose and not args.quiet,
                         threads=args.threads, amp=args.amp, force=args.force,
                         fail_fast=args.fail_fast, executor=args.executor, address=args.address,
                         workers=args.workers, trust_pickle=args.trust_pickle, data_root=args.data_dir,
                         wait=args.wait)
    if args.summary is not None:
        writable_file(args.summary, "--summary")
    result = run_suite(suite, options)
    log.info("%d models trained, %d loaded from the checkpoint cache; %.1fs",
             result.models_trained, result.models_from_cache, result.seconds)
    log.info("%s %s", "kept" if result.kept else "wrote", ", ".join(str(p) for p in result.files.values()))
    print(result.summary, end="")
    _append_summary(args.summary, result.leaderboard)
    if result.failed:
        print(f"mmbench: error: {len(result.failed)} cells failed, first {result.failed[0].name}: "
              f"{result.failed[0].error}; see 'mmbench status {result.out_dir}', fix, then rerun "
              "to resume", file=sys.stderr)
        return 1
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    """Re-render results files, plots and boards from the stored rows (nothing recomputed)."""
    from mmbench.report.publish import republish
    from mmbench.store.folders import writable_file

    if args.summary is not None:
        writable_file(args.summary, "--summary")
    out = republish(args.results)
    log.info("wrote %s", ", ".join(str(p) for p in out.files.values()))
    print(out.summary, end="")
    _append_summary(args.summary, out.leaderboard)
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    """Score differences A - B with paired bootstrap intervals."""
    from mmbench.report.compare import compare, render
    from mmbench.store.folders import writable_file

    if args.summary is not None:
        writable_file(args.summary, "--summary")
    text = render(compare(args.a, args.b), args.a, args.b)
    print(text, end="")
    _append_summary(args.summary, text)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    """Counts of done / pending / failed cells of the latest run, and each failure."""
    from mmbench.store.database import open_existing

    try:
        store = open_existing(args.results)
        try:
            cells, config = store.statuses(), store.config() or {}
        finally:
            store.close()
    except sqlite3.DatabaseError:
        return _damaged(args.results)
    counts = {k: sum(c.status == k for c in cells) for k in ("done", "pending", "failed", "damaged")}
    if not counts["damaged"]:
        counts.pop("damaged")
    print(f"{args.results}: suite {config.get('name', '?')}, {len(cells)} cells: "
          + ", ".join(f"{v} {k}" for k, v in counts.items()))
    for c in cells:
        if c.status in ("failed", "damaged") or (args.verbose and c.status == "pending"):
            print(f"  {c.status:7s} {c.kind:5s} {c.name}" + (f": {c.error}" if c.error else ""))
    return 0


def _damaged(folder: Path) -> int:
    from mmbench.store.repair import inspect_store

    found = inspect_store(folder)
    print(f"{folder}: the store is damaged; readable: {found.summary()}")
    return _fail(f"{folder}'s store is damaged; 'mmbench repair {folder}' copies the readable cells into a "
                 "fresh store (the damaged file is kept) and a rerun computes only what was lost", 1)


def cmd_repair(args: argparse.Namespace) -> int:
    """Salvage every readable row of a damaged store."""
    from mmbench.store.repair import repair

    found = repair(args.results)
    print(f"{args.results}: kept {found.summary()}; the damaged store is {found.damaged}. Rerun the "
          "suite with the same --out to compute what was lost.")
    if found.dropped:
        print(f"dropped {len(found.dropped)} rows that were read but cannot be used:")
        for line in found.dropped:
            print(f"  {line}")
    return 0


def cmd_ls(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    from mmbench.registry import REGISTRIES

    if args.kind == "attacks":
        return _ls_attacks(args.pattern)
    rows = [[e.name, _describe(e), _params(args.kind, e.obj), e.source]
            for e in REGISTRIES[args.kind].entries(args.pattern)]
    if not rows:
        raise MMBenchError(f"no {args.kind} match '{args.pattern}'; run 'mmbench ls {args.kind}'")
    print(tabulate(rows, headers=["name", "description", "parameters", "source"], tablefmt="simple"))
    if args.kind == "perturbations" and not args.pattern:
        print("\nshift corruptions (mmbench ls corruptions for their levels):")
        print(tabulate([[e.name, ", ".join(e.obj.kinds)] for e in REGISTRIES["corruptions"].entries()],
                       headers=["corruption", "modality kinds"], tablefmt="simple"))
    return 0


def _ls_attacks(pattern: str | None) -> int:
    """The torchattacks catalogue of the ``adversarial`` perturbation."""
    import fnmatch

    from tabulate import tabulate

    from mmbench.perturb.attacks import CATALOGUE, REFUSED

    names = fnmatch.filter(sorted(CATALOGUE), pattern) if pattern else sorted(CATALOGUE)
    rows = [[n, CATALOGUE[n].cls, "/".join(CATALOGUE[n].norms),
             "yes" if CATALOGUE[n].bounded else "no (budget enforced)", CATALOGUE[n].mode,
             "black-box" if CATALOGUE[n].black_box else "white-box",
             ", ".join(CATALOGUE[n].option_names())] for n in names]
    if not rows:
        raise MMBenchError(f"no attacks match '{pattern}'; run 'mmbench ls attacks'")
    print(tabulate(rows, headers=["attack", "torchattacks", "norms", "bounded", "mode", "access",
                                  "options"], tablefmt="simple"))
    if not pattern:
        print("\nnot supported: " + "; ".join(f"{k} ({v})" for k, v in sorted(REFUSED.items())))
    return 0


def _params(kind: str, obj: object) -> str:
    """Suite parameters with their defaults, e.g. ``dim=64, hidden=128``."""
    from mmbench.config.params import DATASET_HARNESS_ARGS, HARNESS_ARGS, param_defaults

    if kind == "metrics":
        return "higher is better" if getattr(obj, "higher_is_better", True) else "lower is better"
    if kind == "corruptions":
        return "severity 0-5 (0: identity)"
    if kind == "families":
        parts = [f"{s.name}{' (composite)' if s.name == obj.composite else ''}" for s in obj.scores]
        return "scores: " + (", ".join(parts) or "none")
    target = getattr(obj, "config_type", obj) if kind == "recipes" else obj
    reserved = DATASET_HARNESS_ARGS if kind == "datasets" else HARNESS_ARGS
    defaults = param_defaults(target, reserved)  # type: ignore[arg-type]
    return ", ".join(k if v is ... else f"{k}={v!r}" for k, v in defaults.items())


def _describe(entry: object) -> str:
    meta = getattr(entry, "meta", {})
    if "description" in meta:
        return str(meta["description"])
    doc = (getattr(getattr(entry, "obj", None), "__doc__", None) or "").strip()
    text = doc.splitlines()[0] if doc else ""
    kinds = meta.get("kinds")
    return f"{text} [{', '.join(kinds)}]" if kinds else text


def cmd_validate(args: argparse.Namespace) -> int:
    """Load the suite and its datasets and plan every cell; train and evaluate nothing."""
    from mmbench.config.suite import load_suite

    suite = load_suite(args.suite)  # torch-free: a mistake in the file is reported at once
    from mmbench.config.datasets import load_datasets
    from mmbench.execution.probe import probe_plan, row_report
    from mmbench.plan.cells import check_suite, make_plan, warn_unread

    check_suite(suite)
    datasets = load_datasets(suite, args.trust_pickle, args.data_dir)
    plan = make_plan(suite, datasets)
    probe_plan(plan, datasets)
    warn_unread(plan)
    for line in row_report(plan, datasets):  # split sizes, held-out groups, clipping, natural_shift rows
        print(line)
    print(f"{args.suite}: ok ({len(plan.train_cells)} models to train, "
          f"{len(plan.eval_cells)} evaluations, seeds {list(suite.seeds)})")
    return 0


def configure_logging(args: argparse.Namespace) -> None:
    level = logging.DEBUG if args.debug else logging.WARNING if args.quiet else logging.INFO
    logging.basicConfig(level=level, format="mmbench: %(message)s", stream=sys.stderr, force=True)
    for handler in logging.getLogger().handlers:  # a name from data or a plugin never drives the terminal
        handler.setFormatter(EscapingFormatter("mmbench: %(message)s"))


def _plugins(disabled: bool) -> None:
    """``--no-plugins`` before any registry lookup (Ray workers inherit it), a bad
    ``$MMBENCH_PLUGIN_TIMEOUT`` refused at once, and every distribution's entry points read
    before torch is imported (an unreadable one is a warning)."""
    from mmbench.plugins import NO_PLUGINS_ENV, plugin_timeout, plugins_enabled, scan_plugins

    if disabled:
        os.environ[NO_PLUGINS_ENV] = "1"
    if plugins_enabled():
        plugin_timeout()
    scan_plugins()


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(args)
    try:
        _plugins(args.no_plugins)
        return int(args.func(args))
    except MMBenchError as exc:
        if args.debug:
            raise
        return _fail(str(exc), exc.exit_code)
    except KeyboardInterrupt:
        return _fail("interrupted; finished cells are kept, rerun to resume", 130, prefix="")
    except BrokenPipeError:
        _silence_stdout()
        return _fail("the output was closed early (a pipe such as '| head'); nothing is lost", PIPE_CLOSED)
    except (OSError, sqlite3.Error, MemoryError, RecursionError) as exc:
        if args.debug:
            raise
        return _fail(environment_message(exc), 1)
    except Exception as exc:  # an unexpected failure: one line, the traceback under --debug
        if args.debug:
            raise
        return _fail(f"internal error: {type(exc).__name__}: {str(exc)[:300]} (rerun with --debug for the "
                     "traceback)", 1, prefix="")


#: exit status when stdout was closed early (128 + SIGPIPE, as shells report it)
PIPE_CLOSED = 141


class EscapingFormatter(logging.Formatter):
    """Log lines with control characters written as escapes (line breaks kept)."""

    def format(self, record: logging.LogRecord) -> str:
        from mmbench.text import escaped

        return escaped(super().format(record), frozenset("\n"))


def _fail(message: str, code: int, prefix: str = "error: ") -> int:
    from mmbench.text import escaped

    try:
        print(f"mmbench: {prefix}{escaped(message)}", file=sys.stderr)
    except (BrokenPipeError, OSError):
        pass
    return code


def _silence_stdout() -> None:
    """After a closed pipe, point stdout at /dev/null so the interpreter's final flush is quiet."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def environment_message(exc: BaseException) -> str:
    """One line for a failure of the machine rather than of the input: disk full, a read-only
    or vanished folder, a damaged store, memory."""
    import errno

    text = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
    where = f" ({exc.filename})" if isinstance(exc, OSError) and exc.filename else ""
    if isinstance(exc, MemoryError):
        return "out of memory; use smaller data, fewer rows (max_rows) or a smaller eval batch_size"
    if isinstance(exc, RecursionError):
        return "input nested too deeply; flatten it"
    if (isinstance(exc, OSError) and exc.errno == errno.ENOSPC) or "disk is full" in text:
        return f"disk full{where}; free space and rerun: finished cells are kept"
    if isinstance(exc, OSError) and exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return f"cannot write{where}: {text}; use a writable --out / --cache-dir or fix the permissions"
    if isinstance(exc, sqlite3.DatabaseError):
        return (f"the results store is damaged or unreadable ({text}); 'mmbench status DIR' shows what is "
                "readable and 'mmbench repair DIR' keeps it")
    return f"{type(exc).__name__}: {text}{where}"
