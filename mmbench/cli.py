"""The command line: thin parsing and printing on top of the public API (``mmbench``): each
command calls one of its functions; nothing here reaches an internal module.

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

import mmbench
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
    run.add_argument("--out", type=Path, dest="out_dir", help="results folder (default: results/<suite name>)")
    run.add_argument("--cache-dir", type=Path, dest="cache_dir",
                     help="checkpoint cache folder (default: results/.cache/checkpoints)")
    _prepare_options(run)
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

    validate = sub.add_parser("validate", parents=[common],
                              help="check a suite without running it (prepared exactly as 'run' prepares it)")
    validate.add_argument("suite", type=Path)
    _prepare_options(validate)
    validate.set_defaults(func=cmd_validate)
    return parser


def _summary_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--summary", type=Path, metavar="FILE",
                        help="also append the Markdown boards to FILE (e.g. $GITHUB_STEP_SUMMARY)")


def _prepare_options(parser: argparse.ArgumentParser) -> None:
    """The options that change how a suite is prepared: ``run`` and ``validate`` take them all."""
    parser.add_argument("--device", default="auto",
                        help="auto (CUDA when available), cpu or cuda (default: auto)")
    parser.add_argument("--seeds", type=int, nargs="+", help="training seeds, replacing the suite's")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads per cell (default 1: identical tables on any machine)")
    parser.add_argument("--amp", action="store_true",
                        help="mixed precision (bfloat16) for training and clean evaluation only")
    parser.add_argument("--executor", choices=("local", "ray"), default="local",
                        help="local (in-process, serial; default) or ray (needs the 'ray' extra)")
    parser.add_argument("--address", help="Ray cluster address (default: start a local instance)")
    parser.add_argument("--workers", type=int,
                        help="CPUs of the local Ray instance (default: all cores)")
    parser.add_argument("--trust-pickle", action="store_true",
                        help="allow datasets stored as pickles (they can run code when loaded)")
    parser.add_argument("--data-dir", metavar="ROOT", dest="data_root",
                        help="root of user-supplied data files (avmnist/, mosi_raw.pkl, ...; "
                             "default: $MMBENCH_DATA)")


def _run_options(run: argparse.ArgumentParser) -> None:
    run.add_argument("--force", action="store_true",
                     help="recompute finished cells and retrain (default: resume, skipping them)")
    run.add_argument("--fail-fast", action="store_true",
                     help="stop at the first failing cell (default: record it and go on)")
    run.add_argument("--wait", action="store_true",
                     help="when another run is writing the same results folder, wait for it "
                          "(default: refuse)")


def cmd_run(args: argparse.Namespace) -> int:
    suite = mmbench.load_suite(args.suite)  # torch-free: a mistake in the file is reported at once
    options = mmbench.RunOptions.from_args(args, progress=not args.quiet and sys.stderr.isatty(),
                                           verbose=args.verbose and not args.quiet)
    result = mmbench.run(suite, options)  # appends the leaderboard to --summary
    log.info("%d models trained, %d loaded from the checkpoint cache; %.1fs",
             result.models_trained, result.models_from_cache, result.seconds)
    log.info("%s %s", "kept" if result.kept else "wrote", ", ".join(str(p) for p in result.files.values()))
    print(result.summary, end="")
    if result.failed:
        print(f"mmbench: error: {len(result.failed)} cells failed, first {result.failed[0].name}: "
              f"{result.failed[0].error}; see 'mmbench status {result.out_dir}', fix, then rerun "
              "to resume", file=sys.stderr)
        return 1
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    """Re-render results files, plots and boards from the stored rows (nothing recomputed)."""
    out = mmbench.republish(args.results, args.summary)
    log.info("wrote %s", ", ".join(str(p) for p in out.files.values()))
    print(out.summary, end="")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    """Score differences A - B with paired bootstrap intervals."""
    print(mmbench.compare(args.a, args.b, args.summary), end="")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    """Counts of done / pending / failed cells of the latest run, and each failure."""
    try:
        found = mmbench.status(args.results)
    except sqlite3.DatabaseError:
        return _damaged(args.results)
    print(f"{args.results}: suite {found.suite}, {len(found.cells)} cells: "
          + ", ".join(f"{v} {k}" for k, v in found.counts.items()))
    for c in found.cells:
        if c.status in ("failed", "damaged") or (args.verbose and c.status == "pending"):
            print(f"  {c.status:7s} {c.kind:5s} {c.name}" + (f": {c.error}" if c.error else ""))
    return 0


def _damaged(folder: Path) -> int:
    found = mmbench.inspect_store(folder)
    print(f"{folder}: the store is damaged; readable: {found.summary()}")
    return _fail(f"{folder}'s store is damaged; 'mmbench repair {folder}' copies the readable cells into a "
                 "fresh store (the damaged file is kept) and a rerun computes only what was lost", 1)


def cmd_repair(args: argparse.Namespace) -> int:
    """Salvage every readable row of a damaged store."""
    found = mmbench.repair(args.results)
    print(f"{args.results}: kept {found.summary()}; the damaged store is {found.damaged}. Rerun the "
          "suite with the same --out to compute what was lost.")
    if found.dropped:
        print(f"dropped {len(found.dropped)} rows that were read but cannot be used:")
        for line in found.dropped:
            print(f"  {line}")
    return 0


def cmd_ls(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    if args.kind == "attacks":
        return _ls_attacks(args.pattern)
    tasks = args.kind in ("datasets", "metrics")  # which tasks a dataset has / a metric serves
    rows = [[e.name, e.description, *([", ".join(e.tasks)] if tasks else []), e.parameters, e.source]
            for e in mmbench.describe(args.kind, args.pattern)]
    if not rows:
        raise MMBenchError(f"no {args.kind} match '{args.pattern}'; run 'mmbench ls {args.kind}'")
    headers = ["name", "description", *(["tasks"] if tasks else []), "parameters", "source"]
    print(tabulate(rows, headers=headers, tablefmt="simple"))
    if args.kind == "perturbations" and not args.pattern:
        print("\nshift corruptions (mmbench ls corruptions for their levels):")
        print(tabulate([[e.name, ", ".join(e.kinds)] for e in mmbench.describe("corruptions")],
                       headers=["corruption", "modality kinds"], tablefmt="simple"))
    return 0


def _ls_attacks(pattern: str | None) -> int:
    """The torchattacks catalogue of the ``adversarial`` perturbation."""
    from tabulate import tabulate

    rows = mmbench.attacks(pattern)
    if not rows:
        raise MMBenchError(f"no attacks match '{pattern}'; run 'mmbench ls attacks'")
    print(tabulate(rows, headers="keys", tablefmt="simple"))
    if not pattern:
        print("\nnot supported: " + "; ".join(f"{k} ({v})" for k, v in mmbench.refused_attacks().items()))
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    """Prepare the suite as 'run' would (load, check, plan, probe); train and evaluate nothing."""
    suite = mmbench.load_suite(args.suite)  # torch-free: a mistake in the file is reported at once
    validation = mmbench.validate(suite, mmbench.RunOptions.from_args(args, progress=False))
    print(validation.report(str(args.suite)))  # split sizes, held-out groups, clipping, natural_shift rows
    return 0


def configure_logging(args: argparse.Namespace) -> None:
    level = logging.DEBUG if args.debug else logging.WARNING if args.quiet else logging.INFO
    logging.basicConfig(level=level, format="mmbench: %(message)s", stream=sys.stderr, force=True)
    for handler in logging.getLogger().handlers:  # a name from data or a plugin never drives the terminal
        handler.setFormatter(EscapingFormatter("mmbench: %(message)s"))


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(args)
    try:
        mmbench.setup_plugins(enabled=not args.no_plugins)  # before any registry lookup
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
