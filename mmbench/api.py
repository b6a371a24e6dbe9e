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
from mmbench.perturb.clean import CLEAN
from mmbench.registry import DATASETS, MODELS
from mmbench.runner import RunResult, run_suite

#: registry names under which :func:`evaluate` registers its model and data while it runs
MODEL_ENTRY, DATA_ENTRY = "evaluated_model", "evaluated_data"


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
             score_metric: str = "accuracy", batch_size: int = 512, split: str = "test",
             out_dir: str | Path | None = None, **options: Any) -> RunResult:
    """Evaluate an in-memory, already trained ``model`` (any ``nn.Module``; nothing is trained
    or registered) on ``dataset`` (a :class:`MultimodalDataset` or a registered dataset name)
    under ``perturbations`` (names, or ``{name, params}`` mappings as in a suite).

    Results go to ``out_dir`` when given (a results folder, resumable), else to a temporary
    folder that is removed; the returned :class:`RunResult` holds the tidy ``frame``, the
    ``scores``, the ``leaderboard`` and its ``boards``. The model is returned to its device and
    mode afterwards. ``options``: :class:`RunOptions` fields such as ``device``."""
    data = dataset if isinstance(dataset, MultimodalDataset) else DATASETS.get(dataset)()
    name = label or type(model).__name__
    suite = Suite(
        name="evaluate", datasets=(Component(DATA_ENTRY, label=data.name),),
        models=(Component(MODEL_ENTRY, {"weights": weights_fingerprint(model)}, name),),
        recipes=(Component("pretrained"),),
        perturbations=components(list(perturbations), "perturbations", "evaluate()"),
        metrics=tuple(metrics), eval=EvalConfig(batch_size, split), score_metric=score_metric,
    )
    with _registered(model, data), _restored(model), tempfile.TemporaryDirectory() as tmp:
        out = Path(out_dir) if out_dir is not None else Path(tmp) / "results"
        return run_suite(suite, run_options({"out_dir": out, "cache_dir": Path(tmp) / "cache", **options}))


def weights_fingerprint(model: nn.Module) -> str:
    """A hash of the model's class and weights: results of other weights never mix."""
    h = hashlib.sha256(f"{type(model).__module__}.{type(model).__qualname__}".encode())
    for key, value in model.state_dict().items():
        h.update(key.encode())
        h.update(value.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:24]


@contextlib.contextmanager
def _registered(model: nn.Module, data: MultimodalDataset) -> Iterator[None]:
    """The model and data as registry entries while :func:`evaluate` runs."""
    if MODEL_ENTRY in MODELS or DATA_ENTRY in DATASETS:
        raise MMBenchError("mmbench.evaluate() is already running in this process; nest no calls")

    def factory(weights: str = "") -> nn.Module:
        return model

    def loader() -> MultimodalDataset:
        return data

    MODELS.register(MODEL_ENTRY, factory, source="mmbench.evaluate()")
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
