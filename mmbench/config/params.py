"""Checking suite parameters against a factory's signature or a config dataclass."""

from __future__ import annotations

import dataclasses
import inspect
import types
import typing
from collections.abc import Callable
from typing import Any

from mmbench.errors import MMBenchError, did_you_mean

#: Parameters that the harness passes to model and perturbation factories itself (``train``:
#: the training split, for perturbations that impute from training statistics; a model may
#: name the class count ``n_classes`` or ``num_classes``).
HARNESS_ARGS = frozenset({"modalities", "n_classes", "num_classes", "train", "groups"})
#: filled in by the harness for dataset loaders that declare it (not a suite parameter)
DATASET_HARNESS_ARGS = frozenset({"trust_pickle", "data_root", "suite_dir"})


def declared_params(
    target: Callable[..., Any] | type, reserved: frozenset[str] = frozenset()
) -> dict[str, Any]:
    """Name -> type hint of what a suite may set on ``target`` (``reserved`` names excluded)."""
    if dataclasses.is_dataclass(target):
        hints = _hints(target)
        return {f.name: hints.get(f.name, Any) for f in dataclasses.fields(target)}
    hints = _hints(target.__init__ if inspect.isclass(target) else target)
    return {
        name: hints.get(name, Any)
        for name, p in inspect.signature(target).parameters.items()
        if name not in reserved and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
    }


def _hints(target: Any) -> dict[str, Any]:
    """Type hints, or none when a (plugin's) annotation cannot be resolved."""
    try:
        return typing.get_type_hints(target)
    except Exception:  # e.g. a forward reference to a name the plugin never imports
        return {}


def accepted_params(target: Callable[..., Any]) -> set[str]:
    """Names ``target`` accepts as keywords (a class: its ``__init__``'s)."""
    return {name for name, p in inspect.signature(target).parameters.items()
            if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)}


def _accepted_types(hint: Any) -> tuple[type, ...] | None:
    """Python types a YAML value may have for ``hint``; None when anything goes."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        accepted: list[type] = []
        for arg in typing.get_args(hint):
            sub = _accepted_types(arg)
            if sub is None:
                return None
            accepted.extend(sub)
        return tuple(accepted)
    base = origin or hint
    table: dict[Any, tuple[type, ...]] = {
        int: (int,), float: (int, float), str: (str,), bool: (bool,),
        list: (list,), tuple: (list, tuple), dict: (dict,), type(None): (type(None),),
    }
    return table.get(base)


def check_params(
    target: Callable[..., Any] | type, params: dict[str, Any], what: str,
    reserved: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """Reject unknown names (with did-you-mean) and values of the wrong type."""
    declared = declared_params(target, reserved)
    for key, value in params.items():
        if key not in declared:
            allowed = ", ".join(sorted(declared)) or "none"
            raise MMBenchError(
                f"{what}: unknown parameter '{key}'{did_you_mean(key, declared)}; allowed: {allowed}"
            )
        accepted = _accepted_types(declared[key])
        is_bool_for_number = isinstance(value, bool) and bool not in (accepted or ())
        if accepted is not None and (not isinstance(value, accepted) or is_bool_for_number):
            names = " or ".join(sorted({t.__name__ for t in accepted}))
            raise MMBenchError(
                f"{what}: parameter '{key}' must be {names}, got {type(value).__name__} ({value!r})"
            )
    return params


def build_config(config_type: type, params: dict[str, Any], what: str) -> Any:
    """Instantiate a config dataclass from checked parameters; range errors become one line."""
    check_params(config_type, params, what)
    try:
        return config_type(**params)
    except (TypeError, ValueError) as exc:
        raise MMBenchError(f"{what}: {exc}") from None


def param_defaults(
    target: Callable[..., Any] | type, reserved: frozenset[str] = frozenset()
) -> dict[str, Any]:
    """Name -> default value of what a suite may set on ``target`` (``...`` when required)."""
    if dataclasses.is_dataclass(target):
        return {
            f.name: f.default if f.default is not dataclasses.MISSING else ...
            for f in dataclasses.fields(target)
        }
    return {
        name: p.default if p.default is not p.empty else ...
        for name, p in inspect.signature(target).parameters.items()
        if name not in reserved and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
    }
