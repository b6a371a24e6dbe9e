"""Reading suite YAML safely and within bounds.

A suite file is read only if it is at most :data:`MAX_BYTES` and valid UTF-8; it is parsed with
PyYAML's safe loader extended to refuse duplicate keys (the last one would silently win), more
than :data:`MAX_ALIASES` aliases (a small file must not expand to millions of values), more
than :data:`MAX_NODES` nodes or nesting deeper than :data:`MAX_DEPTH`. Every problem is one
:class:`MMBenchError` line naming the file and, where known, the line.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import yaml

from mmbench.errors import MMBenchError

MAX_BYTES = 1 << 20
MAX_ALIASES = 200
MAX_NODES = 200_000
MAX_DEPTH = 64


class _Limits(yaml.YAMLError):
    """A bound was exceeded (reported as one line by :func:`read_yaml`)."""

    def __init__(self, problem: str, mark: Any = None) -> None:
        super().__init__(problem)
        self.problem, self.problem_mark = problem, mark


class BoundedLoader(yaml.SafeLoader):
    """The safe loader, refusing duplicate keys and bounding aliases, nodes and depth."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.aliases = self.nodes = self.depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:  # noqa: ANN401 (PyYAML's node types)
        if self.check_event(yaml.AliasEvent):
            self.aliases += 1
            if self.aliases > MAX_ALIASES:
                raise _Limits(f"more than {MAX_ALIASES} aliases (*name); write the values out",
                              self.peek_event().start_mark)
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise _Limits(f"more than {MAX_NODES} values; a suite is a short list of components")
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                raise _Limits(f"nested deeper than {MAX_DEPTH} levels", self.peek_event().start_mark)
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1

    def construct_mapping(self, node: Any, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, Any] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, (str, int, float, bool)) and key in seen:
                raise _Limits(f"duplicate key '{str(key)[:60]}' (first at line {seen[key] + 1}); keep one",
                              key_node.start_mark)
            seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


def read_yaml(path: Path) -> Any:
    """The parsed content of ``path``, or a one-line :class:`MMBenchError`."""
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise MMBenchError(f"{path}: {size} bytes; a suite file is at most {MAX_BYTES} bytes "
                               "(split it with include:, or generate fewer entries)")
        raw = path.read_bytes()
    except OSError as exc:
        raise MMBenchError(f"{path}: cannot read it ({exc.strerror or exc}); check the path and "
                           "permissions") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MMBenchError(f"{path}: not UTF-8 text (byte {exc.start}); save the suite as UTF-8") from None
    try:
        data = yaml.load(text, Loader=BoundedLoader)  # noqa: S506 (a SafeLoader subclass)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}:" if mark is not None else ""
        problem = getattr(exc, "problem", None) or (str(exc).splitlines() or ["?"])[0]
        raise MMBenchError(f"{path}:{where} malformed YAML ({str(problem)[:120]}); fix the file") from None
    except RecursionError:
        raise MMBenchError(f"{path}: nested too deeply; flatten the suite") from None
    size = expanded_size(data)
    if size > MAX_NODES:
        what = "a structure that contains itself" if size == math.inf else f"{int(size):,} values"
        raise MMBenchError(f"{path}: its aliases expand to {what}, more than {MAX_NODES:,}; write the "
                           "values out")
    return data


def expanded_size(value: Any) -> float:
    """How many values ``value`` holds once every alias is written out (shared parts count each
    time they appear; ``inf`` for a structure that contains itself). Linear in the distinct
    parts: each is sized once."""
    sizes: dict[int, float] = {}

    def size(item: Any) -> float:
        if not isinstance(item, (dict, list)):
            return 1
        if id(item) in sizes:
            return sizes[id(item)]
        sizes[id(item)] = math.inf  # until sized: met again inside itself, it is endless
        parts = [*item.keys(), *item.values()] if isinstance(item, dict) else item
        sizes[id(item)] = 1 + sum(size(part) for part in parts)
        return sizes[id(item)]

    return size(value)
