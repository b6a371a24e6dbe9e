"""mmbench: robustness benchmarks for multimodal fusion models.

Public API (everything else is internal)::

    import mmbench
    data = mmbench.make_dataset({"vision": x_img, "audio": x_aud}, {"vision": "image",
                                "audio": "sequence"}, labels)          # your own arrays
    result = mmbench.evaluate(my_trained_model, data, ["clean", {"name": "adversarial",
                              "params": {"attacks": ["pgd"], "eps": [0.05]}}])
    result.frame, result.scores, print(result.leaderboard)
    result = mmbench.run("suites/smoke.yaml")                           # or a dict
    mmbench.list_models("*fusion")
    model = mmbench.create_model("late_fusion", data.modalities, data.n_classes)
    trained = mmbench.load_model("results/smoke", dataset="mfeat", model="late_fusion")
    rows = mmbench.outcomes("results/smoke", model="late_fusion", family="clean")  # row ids too
"""

from __future__ import annotations

from typing import Any

from mmbench.version import __version__  # noqa: E402

__all__ = [
    "MMBenchError", "__version__", "create_model", "evaluate", "list_corruptions", "list_datasets",
    "list_families", "list_metrics", "list_models", "list_perturbations", "list_recipes", "load_dataset",
    "load_model", "make_dataset", "outcomes", "register_corruption", "register_dataset", "register_family",
    "register_metric", "register_model", "register_perturbation", "register_recipe", "run", "run_suite",
]

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


def run(suite: Any, **options: Any) -> Any:
    """Run a suite file, mapping or :class:`Suite` (see :func:`mmbench.api.run`)."""
    from mmbench.api import run as _run

    return _run(suite, **options)


def run_suite(suite: Any, options: Any = None) -> Any:
    """Run a suite (a path or a :class:`~mmbench.config.suite.Suite`); see ``RunOptions``."""
    from mmbench.runner import run_suite as _run

    return _run(suite, options)
