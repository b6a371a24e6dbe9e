"""Generated data that fits a registered model, so that contract tests apply to any model.

Zoo models adapt to any modalities, so they are tested on :data:`ALL_KINDS` (one modality of each
kind). A plugin model may take fixed inputs (``forward(self, vision, audio, text)``, fixed layer
sizes, a fixed number of classes): its data is built from what it declares in its registry
metadata (``modalities``: name -> kind or ``{kind, shape}``; ``inputs``), else from its forward
signature, with kinds guessed from the names and then every modality as a vector, and with the
class count its output has. A model whose factory has parameters without defaults is built with
its ``example`` metadata (``example={"hidden": 64}``). The first candidate on which the model builds and runs one forward
and backward pass is used. When none does and the model declares nothing, the contract tests
are skipped with a reason naming the declaration to add; with declarations, the tests run and
show the model's own error.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import torch
from torch import nn

from mmbench.config.build import build_model
from mmbench.config.params import HARNESS_ARGS, accepted_params, param_defaults
from mmbench.data.base import MultimodalDataset
from mmbench.data.synthetic import make_synthetic
from mmbench.errors import first_line
from mmbench.execution.probe import probe_model
from mmbench.metrics.base import Outcomes
from mmbench.models.base import FusionModel
from mmbench.models.calling import ATTENTION_MASK, declared_modalities
from mmbench.perturb.attacks import CATALOGUE
from mmbench.registry import MODELS

#: One modality of each kind, small enough for fast tests.
ALL_KINDS: list[dict[str, Any]] = [
    {"name": "img", "kind": "image", "shape": [1, 8, 8], "informativeness": 1.0},
    {"name": "aud", "kind": "sequence", "shape": [2, 16], "informativeness": 0.8},
    {"name": "tab", "kind": "vector", "shape": [10], "informativeness": 0.6},
    {"name": "txt", "kind": "tokens", "shape": [6], "informativeness": 0.8, "vocab_size": 12},
]
SHAPES = {"image": [1, 8, 8], "sequence": [2, 16], "vector": [10], "tokens": [6]}
#: Name fragments that suggest a kind for an undeclared modality (tried before all-vector).
HINTS = (("image", ("image", "img", "vision", "visual", "pix", "rgb", "photo", "frame", "video")),
         ("sequence", ("audio", "aud", "speech", "sound", "wave", "signal", "seq", "time", "spec")),
         ("tokens", ("token", "ids", "words")))
#: Attack budgets by norm, and small attack options, so a model x attack x target grid is fast.
EPS = {"Linf": 0.1, "L2": 0.5, "L1": 1.0, "L0": 0.25}
FAST: dict[str, dict[str, Any]] = {
    **{name: {"steps": 2} for name, s in CATALOGUE.items() if "steps" in s.option_names()},
    "square": {"n_queries": 15}, "autoattack": {"steps": 2, "n_queries": 15},
    "autoattack_ref": {"steps": 2, "n_queries": 15},
    "spsa": {"nb_iter": 2, "nb_sample": 8, "max_batch_size": 8},
    "onepixel": {"steps": 2, "popsize": 4}, "pixle": {"restarts": 2, "max_iterations": 2},
    "eadl1": {"max_iterations": 10, "binary_search_steps": 2},
    "eaden": {"max_iterations": 10, "binary_search_steps": 2},
    "pgdrs": {"steps": 2, "noise_batch_size": 4}, "pgdrsl2": {"steps": 2, "noise_batch_size": 4},
    "cw": {"steps": 5, "lr": 0.1},
}
N_CLASSES, N_SAMPLES = 4, 160  # 4: the targeted attacks rank four logits
DECLARE = ("declare its inputs in the registry metadata, e.g. modalities={'vision': {'kind': "
           "'image', 'shape': [3, 32, 32]}, 'audio': 'sequence'} (and inputs=[...] for positional "
           "forward parameters named otherwise)")


@dataclass(frozen=True)
class Fit:
    """Data for a model's contract tests, or why there is none (the skip reason)."""

    data: MultimodalDataset | None
    reason: str = ""


def synthetic(modalities: list[dict[str, Any]], n_classes: int = N_CLASSES, seed: int = 3) -> MultimodalDataset:
    """A small seeded dataset with these modalities (informative, so models can learn it)."""
    mods = [{"informativeness": 0.9, **m} for m in modalities]
    return make_synthetic(modalities=mods, n_samples=max(N_SAMPLES, 20 * n_classes),
                          n_classes=n_classes, noise=0.8, seed=seed)


def model_params(name: str) -> dict[str, Any]:
    """The parameters the contract tests build model ``name`` with: its ``example`` metadata
    (needed where its factory has parameters without defaults)."""
    return dict(MODELS.entry(name).meta.get("example") or {})


def _missing_params(name: str) -> list[str]:
    defaults = param_defaults(MODELS.get(name), HARNESS_ARGS)
    return [k for k, v in defaults.items() if v is ... and k not in model_params(name)]


@lru_cache(maxsize=None)
def model_fit(name: str) -> Fit:
    """Data that registered model ``name`` builds and runs on (see the module docstring)."""
    entry = MODELS.entry(name)
    missing = _missing_params(name)
    if missing:
        return Fit(None, f"model '{name}' needs {', '.join(missing)} to build: give them defaults, or "
                         f"register it with example={{{', '.join(repr(m) + ': ...' for m in missing)}}}")
    declared = declared_modalities(entry.meta, f"model '{name}'")
    candidates = _candidates(name, declared)
    if isinstance(candidates, str):
        return Fit(None, candidates)
    errors = []
    for mods in candidates:
        try:
            return Fit(_fitted(name, mods))
        except Exception as exc:  # the next candidate, or the reason below
            errors.append(f"{type(exc).__name__}: {first_line(exc)}")
    if declared:
        return Fit(synthetic(candidates[0]))  # the model's own error shows in its tests
    return Fit(None, f"no generated data fits model '{name}' (first try: {errors[0]}); {DECLARE}")


def _fitted(name: str, mods: list[dict[str, Any]]) -> MultimodalDataset:
    """The candidate data, with the class count of the model's output when the model does not
    take ``n_classes``; raises when the model does not build and run on it."""
    data = synthetic(mods)
    if not {"n_classes", "num_classes"} & accepted_params(MODELS.get(name)):
        data = synthetic(mods, _output_classes(name, data))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = build_model(name, data.modalities, data.n_classes, model_params(name))
        probe_model(model, data, f"model '{name}'")
    return data


def _output_classes(name: str, data: MultimodalDataset) -> int:
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        model = build_model(name, data.modalities, data.n_classes, model_params(name)).eval()
        out = model(data.train.rows(slice(0, 2))[0])
    classes = int(out.shape[-1]) if isinstance(out, torch.Tensor) and out.dim() == 2 else 0
    if classes < 2:
        raise ValueError(f"model '{name}' gives {classes} outputs per row; a classifier needs >= 2")
    return classes


def _candidates(name: str, declared: dict[str, tuple[str, tuple[int, ...] | None]]) -> list[list[dict]] | str:
    """Modality lists to try, or the reason there are none."""
    if declared:
        return [[_modality(m, kind, shape) for m, (kind, shape) in declared.items()]]
    entry = MODELS.entry(name)
    inputs = entry.meta.get("inputs")
    if inputs is not None:
        return _named(list(inputs.values()) if isinstance(inputs, dict) else list(inputs))
    adapts = "modalities" in accepted_params(entry.obj)
    forward = _forward(entry.obj, model_params(name))
    if isinstance(forward, str) or forward is None:
        return forward if isinstance(forward, str) else [ALL_KINDS]
    params = [p for p in inspect.signature(forward).parameters.values()
              if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    names = {p.name for p in params}
    params = [p for p in params if not is_mask(p.name, names)]
    if len(params) != 1:
        return _named([p.name for p in params])
    # one parameter: a dict of modalities (any names while the factory adapts) or one tensor
    return ([ALL_KINDS] if adapts else []) + _named([params[0].name])


def is_mask(param: str, names: set[str]) -> bool:
    """Whether ``param`` takes an attention mask rather than a modality (``attention_mask``, or
    ``<modality>_mask`` beside a parameter ``<modality>``; :mod:`mmbench.models.calling`)."""
    return param == ATTENTION_MASK or (param.endswith("_mask") and param.removesuffix("_mask") in names)


def _named(names: list[str]) -> list[list[dict[str, Any]]]:
    """Modalities with these names: kinds guessed from the names, then all vectors."""
    guessed = [_modality(n, _hinted_kind(n)) for n in names]
    vectors = [_modality(n, "vector") for n in names]
    return [guessed] if guessed == vectors else [guessed, vectors]


def _forward(factory: Any, params: dict[str, Any]) -> Any:
    """The forward of what ``factory`` builds (a class's own, else a built instance's); None
    for a FusionModel; a reason string when it cannot be built."""
    if inspect.isclass(factory) and issubclass(factory, nn.Module):
        return None if issubclass(factory, FusionModel) else factory.forward.__get__(object())
    data = synthetic(ALL_KINDS)
    provided = {"modalities": data.modalities, "n_classes": data.n_classes, "num_classes": data.n_classes}
    wanted = {k: v for k, v in provided.items() if k in accepted_params(factory)}
    try:
        with torch.random.fork_rng(devices=[]):
            model = factory(**wanted, **params)
    except Exception as exc:
        return f"its factory does not build without declared inputs ({type(exc).__name__}: {first_line(exc)}); {DECLARE}"
    return None if isinstance(model, FusionModel) else model.forward


def _hinted_kind(name: str) -> str:
    lowered = name.lower()
    return next((kind for kind, words in HINTS if any(w in lowered for w in words)), "vector")


def _modality(name: str, kind: str, shape: tuple[int, ...] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "kind": kind, "shape": list(shape or SHAPES[kind])}
    if kind == "tokens":
        out["vocab_size"] = 12
    return out


def random_outcomes(seed: int, n: int = 300, k: int = 5) -> tuple[Outcomes, np.ndarray, np.ndarray, np.ndarray]:
    """One cell's outcomes whose prediction is right about 60% of the time: (outcomes, labels,
    predictions, probabilities [n, k])."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, k, n)
    guess = np.where(rng.random(n) < 0.6, labels, rng.integers(0, k, n))
    logits = 3.0 * np.eye(k)[guess] + 0.5 * rng.random((n, k))
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    preds = probs.argmax(axis=1)
    return Outcomes.single(preds, labels, k, probs=probs), labels, preds, probs


class PlainNet(nn.Module):
    """A plain ``nn.Module`` over :data:`ALL_KINDS`, written the usual way (keyword inputs, no
    mmbench base class): the contract tests run perturbations and recipes on it as well as on a
    :class:`FusionModel`, so both kinds of model get every family."""

    def __init__(self, n_classes: int = N_CLASSES, hidden: int = 32) -> None:
        super().__init__()
        self.img = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(256, hidden))
        self.aud = nn.Sequential(nn.Conv1d(2, 4, 5, padding=2), nn.ReLU(), nn.Flatten(), nn.Linear(64, hidden))
        self.tab = nn.Linear(10, hidden)
        self.txt = nn.Embedding(12, hidden)
        self.head = nn.Sequential(nn.ReLU(), nn.Linear(4 * hidden, n_classes))

    def forward(self, img: torch.Tensor, aud: torch.Tensor, tab: torch.Tensor, txt: torch.Tensor) -> torch.Tensor:
        parts = [self.img(img), self.aud(aud), self.tab(tab), self.txt(txt.long()).mean(dim=1)]
        return self.head(torch.cat(parts, dim=1))


def plain_model(data: MultimodalDataset, seed: int = 0) -> nn.Module:
    """:class:`PlainNet` adapted to the harness the way a registered plain module is."""
    from mmbench.models.base import adapt

    torch.manual_seed(seed)
    return adapt(PlainNet(data.n_classes), {}, data.modalities, data.n_classes, "model 'plain'", "data")
