"""Checking suite parameters against a factory's signature or a config dataclass."""

from __future__ import annotations

import dataclasses
import inspect
import math
import types
import typing
from collections.abc import Callable
from typing import Any

from mmbench.bounds import Range
from mmbench.errors import MMBenchError, did_you_mean

#: Parameters that the harness passes to model and perturbation factories itself (``train``:
#: the training split, for perturbations that impute from training statistics; ``task``: the
#: dataset's task; a model may name the class count (its output width) ``n_classes`` or
#: ``num_classes``).
HARNESS_ARGS = frozenset({"modalities", "n_classes", "num_classes", "train", "groups", "task"})
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
    """Type hints (with their ``Annotated`` ranges), or none when a (plugin's) annotation
    cannot be resolved."""
    try:
        return typing.get_type_hints(target, include_extras=True)
    except Exception:  # e.g. a forward reference to a name the plugin never imports
        return {}


def accepted_params(target: Callable[..., Any]) -> set[str]:
    """Names ``target`` accepts as keywords (a class: its ``__init__``'s)."""
    return {name for name, p in inspect.signature(target).parameters.items()
            if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)}


def _accepted_types(hint: Any) -> tuple[type, ...] | None:
    """Python types a YAML value may have for ``hint``; None when anything goes."""
    hint = _strip(hint)
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


def _strip(hint: Any) -> Any:
    """``Annotated[T, ...]`` -> ``T``."""
    return typing.get_args(hint)[0] if typing.get_origin(hint) is typing.Annotated else hint


def _ranges(hint: Any) -> list[Range]:
    return [m for m in typing.get_args(hint)[1:] if isinstance(m, Range)] \
        if typing.get_origin(hint) is typing.Annotated else []


def excerpt(value: Any, limit: int = 60) -> str:
    """``repr(value)``, cut to ``limit`` characters (never echo a whole huge value)."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def check_value(value: Any, hint: Any, where: str) -> None:
    """``value`` against ``hint``: its type (and the element types of ``list[X]``, ``tuple``,
    ``dict[K, V]``, unions), declared ranges, and no NaN/inf anywhere; ``where`` names it."""
    if isinstance(value, float) and not math.isfinite(value):
        raise MMBenchError(f"{where} must be a finite number, got {value!r}")
    accepted = _accepted_types(hint)
    is_bool_for_number = isinstance(value, bool) and bool not in (accepted or ())
    if accepted is not None and (not isinstance(value, accepted) or is_bool_for_number):
        names = " or ".join(sorted({t.__name__ for t in accepted if t is not type(None)}))
        omit = " (or left out)" if type(None) in accepted else ""
        raise MMBenchError(f"{where} must be {names}{omit}, got {type(value).__name__} ({excerpt(value)})")
    for limit in _ranges(hint) + _ranges(_union_member(hint, value)):
        problem = limit.violation(value) if isinstance(value, (int, float)) else None
        if problem:
            raise MMBenchError(f"{where} {problem}, got {excerpt(value)}")
    _check_items(value, _member_hint(hint, value), where)


def _union_member(hint: Any, value: Any) -> Any:
    """The (still annotated) member of a union hint that ``value`` matches, else ``None``."""
    if typing.get_origin(_strip(hint)) in (typing.Union, types.UnionType):
        for arg in typing.get_args(_strip(hint)):
            accepted = _accepted_types(arg)
            if accepted is not None and isinstance(value, accepted) and type(None) not in accepted:
                return arg
    return None


def _member_hint(hint: Any, value: Any) -> Any:
    """The hint of the union member ``value`` matched (or ``hint`` itself)."""
    hint = _strip(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        for arg in typing.get_args(hint):
            accepted = _accepted_types(arg)
            if accepted is None or isinstance(value, accepted):
                return arg
    return hint


def _check_items(value: Any, hint: Any, where: str) -> None:
    """Elements of lists / tuples / mappings against their declared types; finite numbers in
    any container (also undeclared ones)."""
    hint = _strip(hint)
    args = typing.get_args(hint)
    if isinstance(value, (list, tuple)):
        inner = args[0] if args and (typing.get_origin(hint) is list or args[-1:] == (Ellipsis,)) else Any
        for i, item in enumerate(value):
            check_value(item, inner, f"{where}[{i}]")
    elif isinstance(value, dict):
        key_hint, value_hint = args if len(args) == 2 else (Any, Any)
        for key, item in value.items():
            check_value(key, key_hint, f"{where} key")
            check_value(item, value_hint, f"{where}[{excerpt(key, 30)}]")


def check_params(
    target: Callable[..., Any] | type, params: dict[str, Any], what: str,
    reserved: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """Reject unknown names (with did-you-mean), values of the wrong type (elements too),
    values outside declared ranges and non-finite numbers."""
    declared = declared_params(target, reserved)
    for key, value in params.items():
        if key not in declared:
            allowed = ", ".join(sorted(declared)) or "none"
            raise MMBenchError(
                f"{what}: unknown parameter '{str(key)[:40]}'{did_you_mean(str(key), declared)}; "
                f"allowed: {allowed}"
            )
        check_value(value, declared[key], f"{what}: parameter '{key}'")
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
