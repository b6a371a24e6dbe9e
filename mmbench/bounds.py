"""Ranges that a component declares on its parameters, read by the suite checks.

Annotate a factory's or config dataclass's parameter with a range and a suite value outside it
is a one-line error before anything runs, e.g. ``dim: PositiveInt = 64`` or
``noise: Annotated[float, Range(lo=0)] = 1.0``. Non-finite numbers (NaN, inf) are never accepted
for any parameter.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated


@dataclass(frozen=True)
class Range:
    """``lo <= value <= hi`` (``lo_open`` / ``hi_open``: strict); ``None``: unbounded."""

    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False

    def violation(self, value: float) -> str | None:
        """Why ``value`` is out of range, or None."""
        low = self.lo is not None and (value <= self.lo if self.lo_open else value < self.lo)
        high = self.hi is not None and (value >= self.hi if self.hi_open else value > self.hi)
        return f"must be {self.describe()}" if low or high else None

    def describe(self) -> str:
        parts = []
        if self.lo is not None:
            parts.append(f"{'>' if self.lo_open else '>='} {self.lo:g}")
        if self.hi is not None:
            parts.append(f"{'<' if self.hi_open else '<='} {self.hi:g}")
        return " and ".join(parts) or "any number"


PositiveInt = Annotated[int, Range(lo=1)]
NonNegativeInt = Annotated[int, Range(lo=0)]
NonNegative = Annotated[float, Range(lo=0)]
Positive = Annotated[float, Range(lo=0, lo_open=True)]
Fraction = Annotated[float, Range(lo=0, hi=1)]


def check_distinct(values: list, what: str) -> None:
    """A grid (eps, rates, severities, attacks, ...) lists each value once: a repeated value
    would be the same cell twice. One line naming the value; linear in the length."""
    from mmbench.errors import MMBenchError

    seen: set = set()
    for value in values:
        key = repr(value)
        if key in seen:
            raise MMBenchError(f"{what} lists {key[:40]} twice; list each value once")
        seen.add(key)


#: the most cases one perturbation entry of a suite may expand to (attacks x eps x targets, kept
#: subsets x imputations, the product of a compound's stages, ...): past it, one line at planning
MAX_CASES = 10_000
#: the most evaluation cells one suite may plan (models x recipes x seeds x cases, per dataset)
MAX_CELLS = 200_000
#: the most noise draws randomized smoothing takes per row and phase (``n``, ``n0``)
MAX_DRAWS = 1_000_000
#: the most torch threads per cell (``--threads``)
MAX_THREADS = 256


def check_size(size: int, limit: int, what: str, fix: str) -> None:
    """One line when a planned grid is larger than its documented ``limit`` (before any of it
    is built): ``what`` names the grid, ``fix`` what to do."""
    from mmbench.errors import MMBenchError

    if size > limit:
        raise MMBenchError(f"{what} is {size:,}, more than the limit of {limit:,}; {fix}")
