"""mmbench: robustness benchmarks for multimodal fusion models.

Public API (everything else is internal)::

    import mmbench
    data = mmbench.make_dataset({"vision": x_img, "audio": x_aud}, {"vision": "image",
                                "audio": "sequence"}, labels)          # your own arrays
    result = mmbench.evaluate(my_trained_model, data, ["clean", {"name": "adversarial",
                              "params": {"attacks": ["pgd"], "eps": [0.05]}}])
    result.frame, result.scores, result.leaderboard                     # tables and the Markdown boards
    result = mmbench.run("suites/smoke.yaml")                           # or a dict
    mmbench.list_models("*fusion")
    model = mmbench.create_model("late_fusion", data.modalities, data.n_classes)
    trained = mmbench.load_model("results/smoke", dataset="mfeat", model="late_fusion")
    rows = mmbench.outcomes("results/smoke", model="late_fusion", family="clean")  # row ids too
    checked = mmbench.validate("suites/smoke.yaml", seeds=[0, 1])    # prepared as run would, not run
    text = checked.report("smoke")                                      # what mmbench validate prints
    mmbench.status("results/smoke").counts                              # done / pending / failed cells
    table = mmbench.compare("results/a", "results/b")                   # paired score differences (Markdown)

Every command of the command line is a function here (``mmbench.cli`` only parses and prints).
"""

from __future__ import annotations

from typing import Any

from mmbench.version import __version__  # noqa: E402

__all__ = [
    "MMBenchError", "RunOptions", "__version__", "attacks", "compare", "create_model", "describe", "evaluate",
    "inspect_store", "list_corruptions", "list_datasets", "list_families", "list_metrics", "list_models",
    "list_perturbations", "list_recipes", "load_dataset", "load_model", "load_suite", "make_dataset", "outcomes",
    "refused_attacks", "register_corruption", "register_dataset", "register_family", "register_metric",
    "register_model", "register_perturbation", "register_recipe", "repair", "republish", "run", "run_suite",
    "setup_plugins", "status", "validate",
]

from mmbench.config.options import RunOptions  # noqa: E402  (a dataclass: no side effects, no torch)
from mmbench.errors import MMBenchError  # noqa: E402  (no side effects, no torch)


def _registry(kind: str) -> Any:
    from mmbench import registry

    return registry.REGISTRIES[kind]


def register_model(name: str, **meta: Any) -> Any:
    """Decorator registering a model: any ``nn.Module`` class, or a factory returning one. The
    harness passes ``modalities`` and ``n_classes`` where the factory declares them. Metadata:
    ``inputs`` (a modality per positional forward parameter), ``modalities`` (name -> kind or
    ``{kind, shape}``), ``handles_missing``, ``per_modality``, ``description``."""
    return _registry("models").register(name, **meta)


def register_dataset(name: str, **meta: Any) -> Any:
    """Decorator registering a dataset loader ``f(**params) -> MultimodalDataset``."""
    return _registry("datasets").register(name, **meta)


def register_perturbation(name: str, **meta: Any) -> Any:
    """Decorator registering ``f(modalities, n_classes, **params) -> list[Perturbation]``."""
    return _registry("perturbations").register(name, **meta)


def register_corruption(name: str, kinds: tuple[str, ...], levels: tuple[float, ...], unit: str,
                        requires: Any = None, random: bool = True) -> Any:
    """Decorator registering a corruption ``f(x, level, generator, spec) -> Tensor`` for the
    ``shift`` family (see :mod:`mmbench.perturb.corruptions`); ``random=False`` when it draws
    nothing at random."""
    from mmbench.perturb.corruptions import corruption

    return corruption(name, kinds, levels, unit, requires, random)  # type: ignore[arg-type]


def register_family(name: str, **meta: Any) -> Any:
    """Decorator registering a :class:`mmbench.families.base.Family` subclass: the analysis
    (scores, composite part, boards, plots) of perturbations whose ``family`` is ``name``."""
    return _registry("families").register(name, **meta)


def register_metric(name: str, **meta: Any) -> Any:
    """Decorator registering a :class:`mmbench.metrics.Metric` subclass."""
    return _registry("metrics").register(name, **meta)


def register_recipe(name: str, **meta: Any) -> Any:
    """Decorator registering a :class:`mmbench.train.Recipe` subclass."""
    return _registry("recipes").register(name, **meta)


def list_models(pattern: str | None = None) -> list[str]:
    return _registry("models").names(pattern)


def list_datasets(pattern: str | None = None) -> list[str]:
    return _registry("datasets").names(pattern)


def list_perturbations(pattern: str | None = None) -> list[str]:
    return _registry("perturbations").names(pattern)


def list_corruptions(pattern: str | None = None) -> list[str]:
    return _registry("corruptions").names(pattern)


def list_metrics(pattern: str | None = None) -> list[str]:
    return _registry("metrics").names(pattern)


def list_recipes(pattern: str | None = None) -> list[str]:
    return _registry("recipes").names(pattern)


def list_families(pattern: str | None = None) -> list[str]:
    return _registry("families").names(pattern)


def create_model(name: str, modalities: Any, n_classes: int, **overrides: Any) -> Any:
    """Build a registered model for the given modality specs (``None`` overrides dropped)."""
    from mmbench.config.build import create_model as _create

    return _create(name, modalities, n_classes, **overrides)


def load_dataset(name: str, **params: Any) -> Any:
    """Load a registered dataset with its parameters."""
    return _registry("datasets").get(name)(**params)


def make_dataset(arrays: Any, modalities: Any, labels: Any, **options: Any) -> Any:
    """A dataset from in-memory arrays (see :func:`mmbench.data.arrays.make_dataset`)."""
    from mmbench.data.arrays import make_dataset as _make

    return _make(arrays, modalities, labels, **options)


def evaluate(model: Any, dataset: Any, perturbations: Any = None, metrics: Any = ("accuracy",),
             **options: Any) -> Any:
    """Evaluate a trained in-memory model (see :func:`mmbench.api.evaluate`; ``perturbations``
    defaults to the clean split only)."""
    from mmbench.api import evaluate as _evaluate

    if perturbations is None:
        return _evaluate(model, dataset, metrics=metrics, **options)
    return _evaluate(model, dataset, perturbations, metrics, **options)


def load_model(results_dir: Any, **which: Any) -> Any:
    """The exact trained module a results folder's cells used (see :func:`mmbench.audit.load_model`:
    ``dataset``, ``model``, ``recipe``, ``seed``, ``device``, ``cache_dir``)."""
    from mmbench.audit import load_model as _load

    return _load(results_dir, **which)


def outcomes(results_dir: Any, **filters: Any) -> Any:
    """Per-row outcomes of a results folder's cells with their row ids, as a DataFrame (see
    :func:`mmbench.audit.outcomes`; filters such as ``model``, ``family``, ``target``)."""
    from mmbench.audit import outcomes as _outcomes

    return _outcomes(results_dir, **filters)


def load_suite(path: Any) -> Any:
    """Read a suite file (with its includes) and check its structure, importing no torch: a
    mistake in the file is a one-line :class:`MMBenchError` at once (see
    :func:`mmbench.config.suite.load_suite`)."""
    from mmbench.config.suite import load_suite as _load

    return _load(path)


def run(suite: Any, options: Any = None, **fields: Any) -> Any:
    """Run a suite file, mapping or :class:`Suite` with a :class:`RunOptions` or its fields as
    keywords (see :func:`mmbench.api.run`)."""
    from mmbench.api import run as _run

    return _run(suite, options, **fields)


def validate(suite: Any, options: Any = None, **fields: Any) -> Any:
    """Load, check and plan a suite as :func:`run` would, executing nothing; returns the row
    report and the counts that ``mmbench validate`` prints (see :func:`mmbench.api.validate`)."""
    from mmbench.api import validate as _validate

    return _validate(suite, options, **fields)


def republish(results_dir: Any, summary: Any = None) -> Any:
    """Re-render a results folder's files and boards from its store (``mmbench report``; see
    :func:`mmbench.api.republish`)."""
    from mmbench.api import republish as _republish

    return _republish(results_dir, summary)


def compare(a: Any, b: Any, summary: Any = None) -> str:
    """Paired score differences A - B of two results folders, as Markdown (``mmbench compare``;
    see :func:`mmbench.api.compare`)."""
    from mmbench.api import compare as _compare

    return _compare(a, b, summary)


def status(results_dir: Any) -> Any:
    """Done / pending / failed cells of a results folder (``mmbench status``; see
    :func:`mmbench.api.status`)."""
    from mmbench.api import status as _status

    return _status(results_dir)


def inspect_store(results_dir: Any) -> Any:
    """What of a damaged results store can be read (see :func:`mmbench.api.inspect_store`)."""
    from mmbench.api import inspect_store as _inspect

    return _inspect(results_dir)


def repair(results_dir: Any) -> Any:
    """Salvage a damaged results store into a fresh one (``mmbench repair``; see
    :func:`mmbench.api.repair`)."""
    from mmbench.api import repair as _repair

    return _repair(results_dir)


def describe(kind: str, pattern: str | None = None) -> Any:
    """The registered components of ``kind`` as ``mmbench ls`` lists them (see
    :func:`mmbench.api.describe`)."""
    from mmbench.api import describe as _describe

    return _describe(kind, pattern)


def attacks(pattern: str | None = None) -> Any:
    """The catalogue of attacks of the ``adversarial`` perturbation, one row each (see
    :func:`mmbench.api.attacks`)."""
    from mmbench.api import attacks as _attacks

    return _attacks(pattern)


def refused_attacks() -> dict[str, str]:
    """torchattacks attacks that are not supported, with why (see :func:`mmbench.api.refused_attacks`)."""
    from mmbench.api import refused_attacks as _refused

    return _refused()


def setup_plugins(enabled: bool = True) -> None:
    """Set up third-party plugins before any registry lookup (the command line calls it first):
    ``enabled=False`` loads none, here and in Ray workers (as ``MMBENCH_NO_PLUGINS=1``); a bad
    ``$MMBENCH_PLUGIN_TIMEOUT`` is refused at once; every distribution's entry points are read
    now, before torch is imported (an unreadable one is a warning)."""
    import os

    from mmbench import plugins

    if not enabled:
        os.environ[plugins.NO_PLUGINS_ENV] = "1"
    if plugins.plugins_enabled():
        plugins.plugin_timeout()
    plugins.scan_plugins()


def run_suite(suite: Any, options: Any = None) -> Any:
    """Run a suite (a path, mapping or :class:`~mmbench.config.suite.Suite`) with a
    :class:`RunOptions` (see :func:`mmbench.runner.run_suite`)."""
    from mmbench.runner import run_suite as _run

    return _run(suite, options)
