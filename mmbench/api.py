"""The Python API for notebooks: :func:`run` a suite, or :func:`evaluate` a model that is already
trained, with the same engine as the command line (the same rows, intervals, scores and boards).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from torch import nn

from mmbench.config.options import RunOptions
from mmbench.config.suite import Component, EvalConfig, Suite, components, load_suite, parse_suite
from mmbench.data.base import MultimodalDataset
from mmbench.errors import MMBenchError, did_you_mean
from mmbench.models.base import FusionModel
from mmbench.models.calling import derive_call
from mmbench.perturb.clean import CLEAN
from mmbench.registry import DATASETS, METRICS, MODELS
from mmbench.runner import RunResult, run_suite

#: registry names under which :func:`evaluate` registers its model and data while it runs
MODEL_ENTRY, DATA_ENTRY = "evaluated_model", "evaluated_data"
#: how a caller of :func:`evaluate` names the modality of each forward parameter
EVALUATE_INPUTS = "pass inputs=[...] to mmbench.evaluate (or set mmbench_meta = {'inputs': [...]} on the module)"


def run(suite: str | Path | Mapping[str, Any] | Suite, **options: Any) -> RunResult:
    """Run a suite (a YAML path, a mapping with the same keys, or a :class:`Suite`);
    ``options`` are :class:`~mmbench.config.options.RunOptions` fields (``out_dir``,
    ``cache_dir``, ``device``, ``seeds``, ``threads``, ``force``, ...)."""
    if isinstance(suite, Mapping):
        suite = parse_suite({"name": "suite", **dict(suite)}, "suite")
    elif not isinstance(suite, Suite):
        suite = load_suite(suite)
    return run_suite(suite, run_options(options))


def run_options(options: dict[str, Any]) -> RunOptions:
    fields = [f.name for f in dataclasses.fields(RunOptions)]
    for key in options:
        if key not in fields:
            raise MMBenchError(f"unknown run option '{key}'{did_you_mean(key, fields)}; "
                               f"options: {', '.join(fields)}")
    if options.get("seeds") is not None:
        options = {**options, "seeds": tuple(options["seeds"])}
    return RunOptions(**options)


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
                    f"dataset '{data.name}'", EVALUATE_INPUTS)


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
