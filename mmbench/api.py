"""The Python API, which the command line is a thin layer over: :func:`run` or :func:`validate` a
suite, or :func:`evaluate` a model that is already trained, with the same engine as the command line
(the same preparation, rows, intervals, scores and boards); :func:`republish`, :func:`compare`,
:func:`status`, :func:`inspect_store` and :func:`repair` a results folder; :func:`describe` the
registered components and list the :func:`attacks`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fnmatch
import hashlib
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from torch import nn

from mmbench.data.tasks import CLASSIFICATION
from mmbench.perturb.adversarial import TOKEN_OPTIONS
from mmbench.perturb.token_attacks import TOKEN_ATTACKS
from mmbench.config.options import RunOptions
from mmbench.config.params import DATASET_HARNESS_ARGS, HARNESS_ARGS, param_defaults
from mmbench.config.suite import Component, EvalConfig, Suite, components
from mmbench.data.base import MultimodalDataset
from mmbench.errors import MMBenchError, did_you_mean
from mmbench.execution.probe import row_report
from mmbench.models.base import FusionModel
from mmbench.models.calling import derive_call
from mmbench.perturb.attacks import CATALOGUE, REFUSED
from mmbench.perturb.clean import CLEAN
from mmbench.registry import DATASETS, METRICS, MODELS, REGISTRIES
from mmbench.report.compare import compare as compare_runs
from mmbench.report.compare import render
from mmbench.report.publish import Published
from mmbench.report.publish import republish as republish_folder
from mmbench.runner import RunResult, append_summary, prepare, run_suite
from mmbench.store.database import CellStatus, open_existing
from mmbench.store.folders import writable_file
from mmbench.store.repair import Salvage
from mmbench.store.repair import inspect_store as inspect_folder
from mmbench.store.repair import repair as repair_folder

#: registry names under which :func:`evaluate` registers its model and data while it runs
MODEL_ENTRY, DATA_ENTRY = "evaluated_model", "evaluated_data"
#: how a caller of :func:`evaluate` names the modality of each forward parameter
EVALUATE_INPUTS = "pass inputs=[...] to mmbench.evaluate (or set mmbench_meta = {'inputs': [...]} on the module)"


def run(suite: str | Path | Mapping[str, Any] | Suite, options: RunOptions | None = None,
        **fields: Any) -> RunResult:
    """Run a suite (a YAML path, a mapping with the same keys, or a :class:`Suite`) as
    ``mmbench run`` does; ``options``: a :class:`~mmbench.config.options.RunOptions`, or its
    fields as keywords (``out_dir``, ``cache_dir``, ``device``, ``seeds``, ``threads``,
    ``force``, ...; keywords replace those of ``options``)."""
    return run_suite(suite, run_options(fields, options))


def validate(suite: str | Path | Mapping[str, Any] | Suite, options: RunOptions | None = None,
             **fields: Any) -> Validation:
    """Prepare a suite exactly as :func:`run` would (the same :func:`~mmbench.runner.prepare`:
    load, check, resolve the device and executor, load the datasets, plan, probe each model
    once) and execute nothing, as ``mmbench validate`` does: a suite this accepts never fails
    its preparation in :func:`run` with the same options, and the reverse. ``options``: as for
    :func:`run` (those of preparation matter: ``seeds``, ``device``, ``threads``, ``amp``,
    ``executor``, ``address``, ``workers``, ``trust_pickle``, ``data_root``). Returns what
    ``mmbench validate`` prints."""
    prepared = prepare(suite, run_options(fields, options))
    plan = prepared.plan
    return Validation(tuple(row_report(plan, prepared.datasets)), len(plan.train_cells), len(plan.eval_cells),
                      prepared.suite.seeds, prepared.warnings)


@dataclasses.dataclass(frozen=True)
class Validation:
    """What :func:`validate` found: ``rows``, the row report (per dataset its split sizes and
    held-out groups, the loader's notes, the rows each ``natural_shift`` evaluation uses); the
    number of ``models`` to train and of ``evaluations``; the training ``seeds`` (after a
    ``seeds`` option); the ``warnings`` of probing the models (also logged)."""

    rows: tuple[str, ...]
    models: int
    evaluations: int
    seeds: tuple[int, ...]
    warnings: tuple[str, ...] = ()

    def report(self, label: str) -> str:
        """What ``mmbench validate`` prints: the row report, then ``<label>: ok (...)``."""
        ok = (f"{label}: ok ({self.models} models to train, {self.evaluations} evaluations, "
              f"seeds {list(self.seeds)})")
        return "\n".join([*self.rows, ok])


def run_options(fields: Mapping[str, Any], options: RunOptions | None = None) -> RunOptions:
    """``options`` (default: the defaults) with ``fields`` replacing; an unknown field is a
    one-line error with did-you-mean."""
    names = [f.name for f in dataclasses.fields(RunOptions)]
    for key in fields:
        if key not in names:
            raise MMBenchError(f"unknown run option '{key}'{did_you_mean(key, names)}; "
                               f"options: {', '.join(names)}")
    return dataclasses.replace(options or RunOptions(), **fields)


def evaluate(model: nn.Module, dataset: MultimodalDataset | str,
             perturbations: Sequence[str | Mapping[str, Any]] = (CLEAN,),
             metrics: Sequence[str] = ("accuracy",), *, label: str | None = None,
             inputs: Sequence[str] | Mapping[str, str] | None = None,
             score_metric: str = "accuracy", batch_size: int = 512, split: str = "test",
             out_dir: str | Path | None = None, **options: Any) -> RunResult:
    """Evaluate an in-memory, already trained ``model`` (any ``nn.Module``; nothing is trained
    or registered) on ``dataset`` (a :class:`MultimodalDataset` or a registered dataset name)
    under ``perturbations`` (names, or ``{name, params}`` mappings as in a suite).

    The module's ``mmbench_meta`` (class or instance attribute) is read as a registered model's
    metadata; ``inputs`` (a modality per positional forward parameter, or a mapping parameter
    -> modality) overrides its ``inputs``. Results go to ``out_dir`` when given (a results
    folder, resumable), else to a temporary folder that is removed; the returned
    :class:`RunResult` holds the tidy ``frame``, the ``scores``, the ``leaderboard`` and its
    ``boards``. The model is returned to its device and mode afterwards. ``options``:
    :class:`RunOptions` fields such as ``device``."""
    meta = model_meta(model, inputs)
    data = evaluated_data(dataset)
    perturbations, metrics = entries(perturbations, "perturbations", True), entries(metrics, "metrics", False)
    for metric in (*metrics, score_metric):
        METRICS.get(metric)  # an unknown name: one line with did-you-mean, before anything runs
    name = label or type(model).__name__
    check_fits(model, meta, data, name)
    suite = Suite(
        name="evaluate", datasets=(Component(DATA_ENTRY, label=data.name),),
        models=(Component(MODEL_ENTRY, model_params(model, meta), name),),
        recipes=(Component("pretrained"),),
        perturbations=components(list(perturbations), "perturbations", "evaluate()"),
        metrics=tuple(metrics), eval=EvalConfig(batch_size, split), score_metric=score_metric,
    )
    with _registered(model, meta, data), _restored(model), tempfile.TemporaryDirectory() as tmp:
        out = Path(out_dir) if out_dir is not None else Path(tmp) / "results"
        return run_suite(suite, run_options({"out_dir": out, "cache_dir": Path(tmp) / "cache", **options}))


def evaluated_data(dataset: Any) -> MultimodalDataset:
    """The dataset :func:`evaluate` was given: a :class:`MultimodalDataset` or a registered name."""
    if isinstance(dataset, MultimodalDataset):
        return dataset
    if not isinstance(dataset, str):
        raise MMBenchError(f"mmbench.evaluate(): dataset must be a MultimodalDataset (mmbench.make_dataset or "
                           f"mmbench.load_dataset) or a registered dataset name, got a {type(dataset).__name__}")
    return DATASETS.get(dataset)()


def entries(value: Any, what: str, mappings: bool) -> list[Any]:
    """``perturbations`` or ``metrics`` of :func:`evaluate` as a list: one name (or, for
    perturbations, one ``{name, params}`` mapping) is a list of one; anything else is one line."""
    if isinstance(value, str) or (mappings and isinstance(value, Mapping)):
        return [value]
    kinds = (str, Mapping) if mappings else (str,)
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, kinds) for v in value):
        return list(value)
    expected = "names or {name, params} mappings" if mappings else "metric names"
    raise MMBenchError(f"mmbench.evaluate(): {what} must be a non-empty list of {expected}, got "
                       f"{type(value).__name__} {str(value)[:40]!r}")


def model_meta(model: nn.Module, inputs: Sequence[str] | Mapping[str, str] | None) -> dict[str, Any]:
    """The module's ``mmbench_meta`` (as a registered model's metadata), ``inputs`` overriding."""
    if not isinstance(model, nn.Module):
        raise MMBenchError(f"mmbench.evaluate() takes a torch.nn.Module, got a {type(model).__name__}; "
                           "pass the trained module itself")
    meta = getattr(model, "mmbench_meta", None) or {}
    if not isinstance(meta, Mapping):
        raise MMBenchError(f"{type(model).__name__}.mmbench_meta must be a dict (e.g. {{'inputs': [...]}}), "
                           f"got a {type(meta).__name__}; fix the attribute")
    return {**meta, **({"inputs": inputs} if inputs is not None else {})}


def check_fits(model: nn.Module, meta: Mapping[str, Any], data: MultimodalDataset, name: str) -> None:
    """Refuse a module that cannot be called with ``data`` before anything runs, advising what
    a caller of :func:`evaluate` can do (the suite's own check advises registering)."""
    if not isinstance(model, FusionModel):
        derive_call(model.forward, data.modality_names, meta.get("inputs"), f"model '{name}'",
                    f"dataset '{data.name}'", EVALUATE_INPUTS, specs=data.modalities)


def model_params(model: nn.Module, meta: Mapping[str, Any]) -> dict[str, Any]:
    """The model's suite parameters: its weights' fingerprint and the declared ``inputs``
    (part of the cells' keys: results of other weights or another call never mix)."""
    inputs = meta.get("inputs")
    declared = {} if inputs is None else {"inputs": dict(inputs) if isinstance(inputs, Mapping) else list(inputs)}
    return {"weights": weights_fingerprint(model), **declared}


def weights_fingerprint(model: nn.Module) -> str:
    """A hash of the model's class and weights: results of other weights never mix."""
    h = hashlib.sha256(f"{type(model).__module__}.{type(model).__qualname__}".encode())
    for key, value in model.state_dict().items():
        h.update(key.encode())
        h.update(value.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:24]


@contextlib.contextmanager
def _registered(model: nn.Module, meta: Mapping[str, Any], data: MultimodalDataset) -> Iterator[None]:
    """The model (with its metadata) and data as registry entries while :func:`evaluate` runs."""
    if MODEL_ENTRY in MODELS or DATA_ENTRY in DATASETS:
        raise MMBenchError("mmbench.evaluate() is already running in this process; nest no calls")

    def factory(weights: str = "", inputs: Any = None) -> nn.Module:
        return model

    def loader() -> MultimodalDataset:
        return data

    MODELS.register(MODEL_ENTRY, factory, source="mmbench.evaluate()", **meta)
    DATASETS.register(DATA_ENTRY, loader, source="mmbench.evaluate()")
    try:
        yield
    finally:
        MODELS.unregister(MODEL_ENTRY)
        DATASETS.unregister(DATA_ENTRY)


@contextlib.contextmanager
def _restored(model: nn.Module) -> Iterator[None]:
    """Put the model back on its device and in its mode (the run moves it and sets eval)."""
    device = next((p.device for p in model.parameters()), None)
    training = model.training
    try:
        yield
    finally:
        if device is not None:
            model.to(device)
        model.train(training)


def republish(results_dir: str | Path, summary: str | Path | None = None) -> Published:
    """Re-render a results folder's files, plots and boards from its store, recomputing nothing
    (``mmbench report``); ``summary``: a file the leaderboard is appended to (checked writable
    before anything is read)."""
    path = summary_file(summary)
    out = republish_folder(Path(results_dir))
    append_summary(path, out.leaderboard)
    return out


def compare(a: str | Path, b: str | Path, summary: str | Path | None = None) -> str:
    """Paired differences of every score between two results folders (A - B, with paired
    bootstrap intervals; ``mmbench compare``) as Markdown; ``summary``: a file it is appended to
    (checked writable before anything is read)."""
    path = summary_file(summary)
    text = render(compare_runs(Path(a), Path(b)), Path(a), Path(b))
    append_summary(path, text)
    return text


def summary_file(summary: str | Path | None) -> Path | None:
    """The ``--summary`` file, checked to take appended text (one line otherwise)."""
    return None if summary is None else writable_file(Path(summary), "--summary")


@dataclasses.dataclass(frozen=True)
class FolderStatus:
    """The cells of a results folder's latest run: its suite's name and each cell's status
    (``done``, ``pending``, ``failed`` or ``damaged``) with its error."""

    folder: Path
    suite: str
    cells: tuple[CellStatus, ...]

    @property
    def counts(self) -> dict[str, int]:
        """Cells by status: done, pending, failed, and damaged where there are any."""
        counts = {k: sum(c.status == k for c in self.cells) for k in ("done", "pending", "failed", "damaged")}
        if not counts["damaged"]:
            counts.pop("damaged")
        return counts


def status(results_dir: str | Path) -> FolderStatus:
    """The cells of a results folder's latest run (``mmbench status``); a damaged store raises
    :class:`sqlite3.DatabaseError` (:func:`inspect_store` says what is readable)."""
    folder = Path(results_dir)
    store = open_existing(folder)
    try:
        cells, config = store.statuses(), store.config() or {}
    finally:
        store.close()
    return FolderStatus(folder, str(config.get("name", "?")), tuple(cells))


def inspect_store(results_dir: str | Path) -> Salvage:
    """How many rows of each table of a (damaged) results store can be read; nothing written."""
    return inspect_folder(Path(results_dir))


def repair(results_dir: str | Path) -> Salvage:
    """Copy every readable row of a damaged results store into a fresh one, keeping the damaged
    file (``mmbench repair``); a rerun of the suite then computes only what was lost."""
    return repair_folder(Path(results_dir))


@dataclasses.dataclass(frozen=True)
class Listing:
    """A registered component as ``mmbench ls`` lists it: its name, a one-line description, its
    suite parameters with their defaults, where it comes from, (corruptions) the modality
    kinds it applies to and (datasets, metrics) the tasks it has or serves."""

    name: str
    description: str
    parameters: str
    source: str
    kinds: tuple[str, ...] = ()
    tasks: tuple[str, ...] = ()


def describe(kind: str, pattern: str | None = None) -> list[Listing]:
    """The registered ``kind`` (``models``, ``datasets``, ``perturbations``, ``corruptions``,
    ``metrics``, ``recipes`` or ``families``) whose names match the shell-style ``pattern``."""
    if kind not in REGISTRIES:
        raise MMBenchError(f"unknown kind '{kind}'{did_you_mean(kind, REGISTRIES)}; one of "
                           f"{', '.join(REGISTRIES)}")
    return [Listing(e.name, _description(e), _parameters(kind, e.obj), e.source,
                    tuple(getattr(e.obj, "kinds", ()) if kind == "corruptions" else ()), _tasks(kind, e))
            for e in REGISTRIES[kind].entries(pattern)]


def _tasks(kind: str, entry: Any) -> tuple[str, ...]:
    """The tasks a dataset can have (its ``tasks`` metadata; classification when it declares
    none) or a metric is defined for; empty for other kinds."""
    if kind == "metrics":
        return tuple(entry.obj.tasks)
    if kind == "datasets":
        return tuple(entry.meta.get("tasks", (CLASSIFICATION,)))
    return ()


def _parameters(kind: str, obj: object) -> str:
    """Suite parameters with their defaults, e.g. ``dim=64, hidden=128``."""
    if kind == "metrics":
        return "higher is better" if getattr(obj, "higher_is_better", True) else "lower is better"
    if kind == "corruptions":
        return "severity 0-5 (0: identity)"
    if kind == "families":
        family: Any = obj
        parts = [f"{s.name}{' (composite)' if s.name == family.composite else ''}" for s in family.scores]
        return "scores: " + (", ".join(parts) or "none")
    target = getattr(obj, "config_type", obj) if kind == "recipes" else obj
    reserved = DATASET_HARNESS_ARGS if kind == "datasets" else HARNESS_ARGS
    defaults = param_defaults(target, reserved)  # type: ignore[arg-type]
    return ", ".join(k if v is ... else f"{k}={v!r}" for k, v in defaults.items())


def _description(entry: object) -> str:
    """The entry's ``description``, else its docstring's first line (with its modality kinds)."""
    meta = getattr(entry, "meta", {})
    if "description" in meta:
        return str(meta["description"])
    doc = (getattr(getattr(entry, "obj", None), "__doc__", None) or "").strip()
    text = doc.splitlines()[0] if doc else ""
    kinds = meta.get("kinds")
    return f"{text} [{', '.join(kinds)}]" if kinds else text


def attacks(pattern: str | None = None) -> list[dict[str, str]]:
    """The torchattacks catalogue of the ``adversarial`` perturbation (``mmbench ls attacks``),
    one row per attack whose name matches the shell-style ``pattern``: ``attack``,
    ``torchattacks`` (its class), ``norms``, ``bounded``, ``mode``, ``access``, ``tasks`` (every
    task, or classification only: attacks reading class decisions), ``options``."""
    names = sorted(CATALOGUE)
    return [{"attack": n, "torchattacks": CATALOGUE[n].cls, "norms": "/".join(CATALOGUE[n].norms),
             "bounded": "yes" if CATALOGUE[n].bounded else "no (budget enforced)", "mode": CATALOGUE[n].mode,
             "access": "black-box" if CATALOGUE[n].black_box else "white-box",
             "tasks": "all" if CATALOGUE[n].any_task else CLASSIFICATION,
             "options": ", ".join(CATALOGUE[n].option_names())}
            for n in (fnmatch.filter(names, pattern) if pattern else names)] + [
        {"attack": n, "torchattacks": "- (mmbench, tokens)", "norms": "tokens" if n in TOKEN_ATTACKS else
         "embedding L2 (diagnostic)", "bounded": "yes", "mode": "batch",
         "access": "white-box" if TOKEN_ATTACKS.get(n, True) else "black-box", "tasks": "all",
         "options": ", ".join(opts)}
        for n, opts in sorted(TOKEN_OPTIONS.items()) if not pattern or fnmatch.fnmatch(n, pattern)]


def refused_attacks() -> dict[str, str]:
    """torchattacks attacks the ``adversarial`` perturbation does not support, with why."""
    return dict(sorted(REFUSED.items()))
