"""Any ``torch.nn.Module`` as a model: call it the way its ``forward`` declares.

The harness hands models a batch (modality name -> tensor). A :class:`FusionModel` takes that
mapping as it is (and lets the harness reuse its encoders); any other module is wrapped in a
:class:`PlainModel`, which calls it according to its ``forward`` signature:

- keyword parameters named like the dataset's modalities get those modalities
  (``forward(self, vision, audio, text)``); optional ones only when the dataset has them, and a
  ``**kwargs`` parameter gets every modality;
- a single parameter that is not named like a modality gets the whole mapping
  (``forward(self, batch)``), unless it is annotated as a ``Tensor`` (or the dataset has one
  modality and the parameter is unannotated), which gets that one modality's tensor;
- ``forward(self, *inputs)`` gets every modality positionally, in the dataset's order;
- the registry metadata ``inputs`` maps parameters whose names differ: a list names the
  modality of each positional parameter in order (``inputs=["vision", "audio"]`` for
  ``forward(self, x1, x2)``), a mapping names it per parameter (``{"x1": "vision"}``).

- a parameter named ``attention_mask`` (the dataset has one tokens modality) or
  ``<modality>_mask`` (for tokens modality ``<modality>``) gets ``[rows, T]`` ones where the
  ids are not the modality's ``pad_id`` (all ones without one), computed from the ids of each
  call, so the mask follows every perturbation of the ids (dropped, imputed, corrupted or
  attacked tokens) as Hugging Face encoders expect.

The module returns logits ``[rows, classes]``: a tensor, or a mapping / an output object with
a ``logits`` entry (as Hugging Face models return).

Declared ``modalities`` metadata (name -> kind, or ``{kind, shape}``) is checked against each
dataset at planning, so a model that does not fit a dataset is refused in one line naming both.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import Tensor, nn

from mmbench.data.base import Batch, ModalityKind, ModalitySpec
from mmbench.errors import MMBenchError, did_you_mean

DICT, KEYWORDS, POSITIONAL = "dict", "keywords", "positional"
#: the parameter that takes the attention mask of a dataset's one tokens modality
ATTENTION_MASK = "attention_mask"
_VAR = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)


@dataclass(frozen=True)
class CallSpec:
    """How a plain module is called: ``style`` and, per argument, the modality it receives
    (``params``: the parameter names for keyword calls)."""

    style: str
    modalities: tuple[str, ...]
    params: tuple[str, ...] = ()
    #: (parameter, tokens modality spec) of each attention mask ``forward`` asks for
    masks: tuple[tuple[str, ModalitySpec], ...] = ()

    def __call__(self, module: nn.Module, batch: Batch) -> Any:
        masks = {p: spec.attention_mask(batch[spec.name]) for p, spec in self.masks}
        if self.style == DICT:
            return module({name: batch[name] for name in self.modalities}, **masks)
        if self.style == KEYWORDS:
            return module(**{p: batch[m] for p, m in zip(self.params, self.modalities, strict=True)}, **masks)
        return module(*(batch[m] for m in self.modalities), **masks)

    def describe(self) -> str:
        masks = "".join(f", {p}=mask of {spec.name}" for p, spec in self.masks)
        if self.style == DICT:
            return f"forward(batch{masks}) with a dict of modalities"
        if self.style == KEYWORDS:
            pairs = (f"{p}={m}" if p != m else p for p, m in zip(self.params, self.modalities, strict=True))
            return f"forward({', '.join(pairs)}{masks})"
        return f"forward({', '.join(self.modalities)}{masks})"


#: how a registered model names the modality of each parameter (what a refusal advises)
REGISTER_INPUTS = "register the model with inputs=[...]"


def derive_call(forward: Any, names: Sequence[str], inputs: Any = None, what: str = "model",
                dataset: str = "the dataset", fix: str = REGISTER_INPUTS,
                specs: Sequence[ModalitySpec] = ()) -> CallSpec:
    """The :class:`CallSpec` of a ``forward`` (a bound method) for a dataset with modalities
    ``names`` (``specs``: theirs, where attention masks come from); a one-line
    :class:`MMBenchError` when they cannot fit (``fix``: how the caller declares ``inputs``,
    which the error advises)."""
    params = list(inspect.signature(forward).parameters.values())
    masks = mask_params(params, names, specs, what, dataset)
    params = [p for p in params if p.name not in dict(masks)]
    return replace(_call(params, names, inputs, what, dataset, fix), masks=masks)


def mask_params(params: list[inspect.Parameter], names: Sequence[str], specs: Sequence[ModalitySpec],
                what: str, dataset: str) -> tuple[tuple[str, ModalitySpec], ...]:
    """The parameters of ``forward`` that take an attention mask: ``attention_mask`` (when the
    dataset has exactly one tokens modality) and ``<modality>_mask`` of a tokens modality."""
    tokens = {s.name: s for s in specs if not s.is_continuous}
    out = []
    for p in params:
        if p.kind in _VAR or p.name in names:
            continue
        if p.name.endswith("_mask") and p.name.removesuffix("_mask") in tokens:
            out.append((p.name, tokens[p.name.removesuffix("_mask")]))
        elif p.name == ATTENTION_MASK and tokens:
            if len(tokens) > 1:
                raise MMBenchError(f"{what} takes '{ATTENTION_MASK}' but {dataset} has {len(tokens)} tokens "
                                   f"modalities ({', '.join(tokens)}); name the parameter <modality>_mask "
                                   f"(e.g. {next(iter(tokens))}_mask)")
            out.append((p.name, next(iter(tokens.values()))))
    return tuple(out)


def _call(params: list[inspect.Parameter], names: Sequence[str], inputs: Any, what: str, dataset: str,
          fix: str) -> CallSpec:
    """How to pass the modalities to the parameters ``params`` (masks set aside)."""
    if inputs is not None:
        return _declared_call(params, names, inputs, what, dataset)
    fixed = [p for p in params if p.kind not in _VAR]
    required = [p for p in fixed if p.default is p.empty]
    var_keyword = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params)
    if not fixed and any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in params):
        return CallSpec(POSITIONAL, tuple(names))  # forward(self, *inputs): every modality, in order
    named = [p for p in fixed if p.name in names and p.kind is not p.POSITIONAL_ONLY]
    if required and all(p.name in names for p in required) or (not required and (named or var_keyword)):
        chosen = [p.name for p in named]
        chosen += [n for n in names if var_keyword and n not in chosen]
        return CallSpec(KEYWORDS, tuple(chosen), tuple(chosen))
    if len(required) == 1 and required[0].kind is not inspect.Parameter.KEYWORD_ONLY:
        return _single_call(required[0], names, fix)
    raise MMBenchError(_mismatch(required, names, what, dataset, fix))


def _single_call(param: inspect.Parameter, names: Sequence[str], fix: str) -> CallSpec:
    """One parameter not named like a modality: the dict of modalities, or one tensor."""
    annotation = param.annotation
    wants_tensor = annotation is Tensor or annotation in ("Tensor", "torch.Tensor")
    if wants_tensor or (annotation is param.empty and len(names) == 1):
        if len(names) != 1:
            raise MMBenchError(f"forward({param.name}: Tensor) takes one tensor but the dataset has "
                               f"{len(names)} modalities ({', '.join(names)}); {fix} or take a dict of "
                               "modalities")
        return CallSpec(POSITIONAL, (names[0],))
    return CallSpec(DICT, tuple(names))


def _declared_call(params: list[inspect.Parameter], names: Sequence[str], inputs: Any, what: str,
                   dataset: str) -> CallSpec:
    """``inputs`` metadata: a list (modality per positional parameter) or a mapping
    (parameter -> modality)."""
    pairs = _input_pairs(params, inputs, what)
    for _, modality in pairs:
        if modality not in names:
            raise MMBenchError(f"{what}: its inputs name modality '{modality}', which {dataset} does not "
                               f"have{did_you_mean(modality, names)}; {dataset} has {', '.join(names)}")
    if isinstance(inputs, Mapping):
        return CallSpec(KEYWORDS, tuple(m for _, m in pairs), tuple(p for p, _ in pairs))
    return CallSpec(POSITIONAL, tuple(m for _, m in pairs))


def _input_pairs(params: list[inspect.Parameter], inputs: Any, what: str) -> list[tuple[str, str]]:
    if isinstance(inputs, Mapping):
        known = {p.name for p in params if p.kind not in _VAR}
        takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params)
        for param in inputs:
            if param not in known and not takes_any:
                raise MMBenchError(f"{what}: inputs names parameter '{param}', which forward does not "
                                   f"take{did_you_mean(str(param), known)}")
        return [(str(p), str(m)) for p, m in inputs.items()]
    if not isinstance(inputs, (list, tuple)) or not all(isinstance(m, str) for m in inputs):
        raise MMBenchError(f"{what}: 'inputs' metadata must be a list of modality names (one per "
                           "positional parameter of forward) or a mapping parameter -> modality")
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    takes_more = any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in params)
    if len(inputs) > len(positional) and not takes_more:
        raise MMBenchError(f"{what}: inputs names {len(inputs)} modalities but forward takes "
                           f"{len(positional)} positional parameters")
    labels = [p.name for p in positional] + [f"arg{i}" for i in range(len(positional), len(inputs))]
    return list(zip(labels, inputs, strict=True))


def _mismatch(required: list[inspect.Parameter], names: Sequence[str], what: str, dataset: str,
              fix: str) -> str:
    missing = [p.name for p in required if p.name not in names]
    hint = did_you_mean(missing[0], names) if missing else ""
    takes = ", ".join(p.name for p in required) or "no parameters"
    return (f"{what} takes {takes} (its forward's parameters) but {dataset} has modalities "
            f"{', '.join(names)}; '{missing[0] if missing else takes}' is not one of them{hint}: "
            f"rename the data's modalities, or {fix} naming the modality for each parameter")


class PlainModel(nn.Module):
    """A plain ``nn.Module`` adapted to the harness: ``forward(batch)`` calls the wrapped
    ``module`` as its own ``forward`` declares (see :class:`CallSpec`) and checks that it
    returns a logits tensor."""

    def __init__(self, module: nn.Module, modalities: Sequence[ModalitySpec], n_classes: int,
                 call: CallSpec, label: str = "model") -> None:
        super().__init__()
        self.module = module
        self.modalities = tuple(modalities)
        self.n_classes = n_classes
        self.call = call
        self.label = label

    @property
    def input_modalities(self) -> tuple[str, ...]:
        """The modalities the wrapped module receives."""
        return self.call.modalities

    def forward(self, batch: Batch) -> Tensor:
        return logits_of(self.call(self.module, batch), self.label)


def logits_of(out: Any, label: str) -> Tensor:
    """The logits in a module's output: a tensor, or a ``logits`` entry or attribute."""
    if isinstance(out, torch.Tensor):
        return out
    found = out.get("logits") if isinstance(out, Mapping) else getattr(out, "logits", None)
    if isinstance(found, torch.Tensor):
        return found
    raise TypeError(f"{label} returned {type(out).__name__}, not a logits tensor [rows, classes]; return "
                    "the logits (or a mapping / object with a 'logits' entry)")


def declared_modalities(meta: Mapping[str, Any], what: str) -> dict[str, tuple[str, tuple[int, ...] | None]]:
    """Registry metadata ``modalities``: name -> (kind, shape or None)."""
    raw = meta.get("modalities") or {}
    if not isinstance(raw, Mapping):
        raise MMBenchError(f"{what}: 'modalities' metadata must map modality names to kinds")
    out: dict[str, tuple[str, tuple[int, ...] | None]] = {}
    kinds = [k.value for k in ModalityKind]
    for name, value in raw.items():
        kind = value if isinstance(value, str) else value.get("kind") if isinstance(value, Mapping) else None
        if kind not in kinds:
            raise MMBenchError(f"{what}: modality '{name}' in its 'modalities' metadata must be a kind "
                               f"({', '.join(kinds)}) or {{kind, shape}}, got {value!r}")
        shape = value.get("shape") if isinstance(value, Mapping) else None
        out[str(name)] = (kind, tuple(int(s) for s in shape) if shape is not None else None)
    return out


def check_declared(meta: Mapping[str, Any], specs: Sequence[ModalitySpec], reads: Sequence[str],
                   what: str, dataset: str) -> None:
    """Declared modality kinds (and shapes) must match the dataset's for every modality the
    model reads; a one-line error naming the model, the dataset and the modality otherwise."""
    by_name = {s.name: s for s in specs}
    for name, (kind, shape) in declared_modalities(meta, what).items():
        spec = by_name.get(name)
        if spec is None:
            if name in reads or not reads:
                raise MMBenchError(f"{what} declares modality '{name}', which {dataset} does not have"
                                   f"{did_you_mean(name, by_name)}; {dataset} has {', '.join(by_name)}")
            continue
        if spec.kind.value != kind:
            raise MMBenchError(f"{what} declares modality '{name}' as {kind}, but in {dataset} it is "
                               f"{spec.kind.value} {list(spec.shape)}; use a dataset whose '{name}' is {kind}")
        if shape is not None and tuple(spec.shape) != shape:
            raise MMBenchError(f"{what} declares modality '{name}' with shape {list(shape)}, but in "
                               f"{dataset} it has shape {list(spec.shape)}; reshape the data or the model")
